#!/usr/bin/env bash
# Reverse ETL from MariaDB (or MySQL) to NDJSON, side by side with the `mariadb` client
# writing the same query's rows to a file (`--batch --raw --quick`: unbuffered, one
# tab-separated line per row; the speed at which the server hands the rows over).
#
#   MYSQL_PASSWORD=... bash benches/scripts/reverse_etl_vs_mariadb.sh MYSQL_URL [ROWS...]
#
# MYSQL_URL is mysql://user@host:port/database (the test server of
# crates/source/tests/mysql/start.sh: mysql://cdp@127.0.0.1:53306/cdp_test with the
# password cdp-test-password). For each ROWS (default 1000000) it fills a table with that
# many people (MariaDB's sequence engine), then times the client and `reverse_etl once`
# (identify calls into an NDJSON file), and reports rows per second, the ratio, the
# peak RSS of the sync and the size of both files.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
URL="${1:?usage: MYSQL_PASSWORD=... reverse_etl_vs_mariadb.sh MYSQL_URL [ROWS...]}"
shift
SIZES=("${@:-1000000}")
: "${MYSQL_PASSWORD:?set MYSQL_PASSWORD to the password of the user in the URL}"
read -r USER HOST PORT DB < <(python3 -c "
import sys, urllib.parse
u = urllib.parse.urlparse(sys.argv[1])
print(u.username, u.hostname, u.port or 3306, u.path.lstrip('/'))" "$URL")
WORK="$(mktemp -d /tmp/cdp-retl-mariadb.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release -p cdp-warehouse --features mysql --example reverse_etl >/dev/null 2>&1
client() {
    MYSQL_PWD="$MYSQL_PASSWORD" mariadb --no-defaults --protocol=tcp -h "$HOST" -P "$PORT" -u "$USER" "$DB" "$@"
}
QUERY='SELECT id AS userId, email, plan, score, active, city, created_at, updated_at FROM bench_people WHERE UNIX_TIMESTAMP(updated_at) > {{last_sync_time}}'
cat >"$WORK/sync.toml" <<TOML
state_dir = "$WORK/state"
[sources.shop]
kind = "mysql"
url = "$URL"
password_env = "MYSQL_PASSWORD"
statement_timeout = "1h"
[destinations.file]
kind = "ndjson"
path = "$WORK/calls.ndjson"
[[syncs]]
name = "people"
type = "identify"
source = "shop"
destination = "file"
query = '''$QUERY'''
every = "1h"
TOML
printf '%-9s %13s %12s %18s %11s %13s %13s\n' rows client_rows_s sync_rows_s sync_time/client sync_rss_mb client_file_mb ndjson_mb
for rows in ${SIZES[*]}; do
    client -e "DROP TABLE IF EXISTS bench_people;
        CREATE TABLE bench_people (id BIGINT PRIMARY KEY, email VARCHAR(64), plan VARCHAR(8), score DECIMAL(6,1),
            active TINYINT(1), city VARCHAR(16), created_at DATETIME(6), updated_at TIMESTAMP(6) NULL);
        INSERT INTO bench_people SELECT seq, CONCAT('person', seq, '@example.com'), ELT(1 + seq % 2, 'free', 'pro'),
            (seq % 1000) / 10.0, seq % 3 = 0, ELT(1 + seq % 3, 'Berlin', 'Lisbon', 'Osaka'),
            NOW(6) - INTERVAL 1 DAY, NOW(6) FROM seq_1_to_$rows;"
    rm -rf "$WORK/state" "$WORK/calls.ndjson"
    start=$(date +%s.%N)
    client --batch --raw --quick -e "${QUERY//\{\{last_sync_time\}\}/0}" >"$WORK/client.tsv"
    client_s=$(python3 -c "import time; print(time.time() - $start)")
    [ "$(($(wc -l <"$WORK/client.tsv") - 1))" = "$rows" ] || { echo "the client wrote $(wc -l <"$WORK/client.tsv") lines" >&2; exit 1; }
    /usr/bin/time -o "$WORK/t" -f "%e %M" target/release/examples/reverse_etl --config "$WORK/sync.toml" once people >"$WORK/out" 2>/dev/null
    read -r sync_s rss_kb <"$WORK/t"
    grep -q "$rows rows read, $rows calls delivered, 0 row errors" "$WORK/out" || { cat "$WORK/out"; exit 1; }
    python3 -c "print('%-9d %13.0f %12.0f %17.2fx %11.0f %14.0f %13.0f' % ($rows, $rows / $client_s, $rows / $sync_s, $sync_s / $client_s, $rss_kb / 1024, $(stat -c %s "$WORK/client.tsv") / 1e6, $(stat -c %s "$WORK/calls.ndjson") / 1e6))"
done
client -e "DROP TABLE IF EXISTS bench_people"
