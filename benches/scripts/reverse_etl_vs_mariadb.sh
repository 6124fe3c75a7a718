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
#
# With SSH_TUNNEL=1 the sync also runs a second time through an SSH tunnel
# (`[sources.NAME.ssh]`, a key that `reverse_etl keygen` writes) to the same server,
# and reports its rows per second and peak RSS beside the direct run's. The SSH server:
#
#   SSH_ADDR=host:port SSH_USER=... SSH_AUTHORIZED_KEYS=FILE SSH_HOST_KEY_FP=SHA256:...
#
# (an OpenSSH server that reads FILE as the user's authorized_keys, e.g. the one
# crates/source/tests/ssh/start.sh starts; the key's line is appended to FILE and
# removed at the end), or, without SSH_ADDR, a server of the script's own that
# tests/ssh/start.sh starts on SSH_PORT (default 52222) and stops at the end. The
# database's host and port in MYSQL_URL are then as the SSH server sees them.
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
SSH_TUNNEL="${SSH_TUNNEL:-0}"
OWN_SSHD=""
KEY_LINE=""
cleanup() {
    if [ -n "$KEY_LINE" ] && [ -f "${SSH_AUTHORIZED_KEYS:-}" ]; then
        grep -vxF "$KEY_LINE" "$SSH_AUTHORIZED_KEYS" >"$WORK/authorized_keys.new" || true
        cat "$WORK/authorized_keys.new" >"$SSH_AUTHORIZED_KEYS"
    fi
    if [ -n "$OWN_SSHD" ] && [ -f "$OWN_SSHD/sshd.pid" ]; then kill "$(cat "$OWN_SSHD/sshd.pid")" || true; fi
    rm -rf "$WORK"
}
trap cleanup EXIT
features=mysql
[ "$SSH_TUNNEL" = 1 ] && features=mysql,ssh
cargo build --release -p cdp-warehouse --features "$features" --example reverse_etl >/dev/null 2>&1
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
if [ "$SSH_TUNNEL" = 1 ]; then
    if [ -z "${SSH_ADDR:-}" ]; then
        OWN_SSHD="$WORK/sshd"
        mkdir -p /run/sshd 2>/dev/null || true
        bash crates/source/tests/ssh/start.sh "$OWN_SSHD" "${SSH_PORT:-52222}"
        SSH_ADDR="127.0.0.1:${SSH_PORT:-52222}"
        SSH_USER="$(id -un)"
        SSH_AUTHORIZED_KEYS="$OWN_SSHD/authorized_keys"
        SSH_HOST_KEY_FP="$(ssh-keygen -l -E sha256 -f "$OWN_SSHD/host_key.pub" | awk '{print $2}')"
    fi
    : "${SSH_USER:?set SSH_USER}" "${SSH_AUTHORIZED_KEYS:?set SSH_AUTHORIZED_KEYS}" "${SSH_HOST_KEY_FP:?set SSH_HOST_KEY_FP}"
    KEY_LINE="$(target/release/examples/reverse_etl keygen "$WORK/ssh_key" 2>/dev/null)"
    echo "$KEY_LINE" >>"$SSH_AUTHORIZED_KEYS"
    cp "$WORK/sync.toml" "$WORK/tunnel.toml"
    python3 - "$WORK/tunnel.toml" "$SSH_ADDR" "$SSH_USER" "$WORK/ssh_key" "$SSH_HOST_KEY_FP" "$WORK" <<'PY'
import sys
path, addr, user, key, fp, work = sys.argv[1:]
host, port = addr.rsplit(':', 1)
text = open(path).read()
text = text.replace(f'state_dir = "{work}/state"', f'state_dir = "{work}/tunnel-state"')
text = text.replace(f'path = "{work}/calls.ndjson"', f'path = "{work}/tunnel.ndjson"')
text = text.replace('[destinations.file]', f'[sources.shop.ssh]\nhost = "{host}"\nport = {port}\nuser = "{user}"\n'
                    f'private_key_path = "{key}"\nhost_key = "{fp}"\n[destinations.file]')
open(path, 'w').write(text)
PY
    target/release/examples/reverse_etl --config "$WORK/tunnel.toml" check shop >/dev/null 2>&1 \
        || { target/release/examples/reverse_etl --config "$WORK/tunnel.toml" check shop; exit 1; }
fi
# Runs `once people` with the configuration $1 under /usr/bin/time; sets run_s and rss_kb.
timed_sync() {
    /usr/bin/time -o "$WORK/t" -f "%e %M" target/release/examples/reverse_etl --config "$1" once people >"$WORK/out" 2>/dev/null
    read -r run_s rss_kb <"$WORK/t"
    grep -q "$rows rows read, $rows calls delivered, 0 row errors" "$WORK/out" || { cat "$WORK/out"; exit 1; }
}
header='%-9s %13s %12s %18s %11s %13s %13s'
[ "$SSH_TUNNEL" = 1 ] && header="$header %14s %13s %13s"
# shellcheck disable=SC2059
printf "$header\n" rows client_rows_s sync_rows_s sync_time/client sync_rss_mb client_file_mb ndjson_mb \
    tunnel_rows_s tunnel/direct tunnel_rss_mb
for rows in ${SIZES[*]}; do
    client -e "DROP TABLE IF EXISTS bench_people;
        CREATE TABLE bench_people (id BIGINT PRIMARY KEY, email VARCHAR(64), plan VARCHAR(8), score DECIMAL(6,1),
            active TINYINT(1), city VARCHAR(16), created_at DATETIME(6), updated_at TIMESTAMP(6) NULL);
        INSERT INTO bench_people SELECT seq, CONCAT('person', seq, '@example.com'), ELT(1 + seq % 2, 'free', 'pro'),
            (seq % 1000) / 10.0, seq % 3 = 0, ELT(1 + seq % 3, 'Berlin', 'Lisbon', 'Osaka'),
            NOW(6) - INTERVAL 1 DAY, NOW(6) FROM seq_1_to_$rows;"
    rm -rf "$WORK/state" "$WORK/calls.ndjson" "$WORK/tunnel-state" "$WORK/tunnel.ndjson"
    start=$(date +%s.%N)
    client --batch --raw --quick -e "${QUERY//\{\{last_sync_time\}\}/0}" >"$WORK/client.tsv"
    client_s=$(python3 -c "import time; print(time.time() - $start)")
    [ "$(($(wc -l <"$WORK/client.tsv") - 1))" = "$rows" ] || { echo "the client wrote $(wc -l <"$WORK/client.tsv") lines" >&2; exit 1; }
    timed_sync "$WORK/sync.toml"
    sync_s=$run_s sync_rss_kb=$rss_kb
    line=$(python3 -c "print('%-9d %13.0f %12.0f %17.2fx %11.0f %14.0f %13.0f' % ($rows, $rows / $client_s, $rows / $sync_s, $sync_s / $client_s, $sync_rss_kb / 1024, $(stat -c %s "$WORK/client.tsv") / 1e6, $(stat -c %s "$WORK/calls.ndjson") / 1e6))")
    if [ "$SSH_TUNNEL" = 1 ]; then
        timed_sync "$WORK/tunnel.toml"
        [ "$(wc -l <"$WORK/tunnel.ndjson")" = "$rows" ] || { echo "the tunnel's NDJSON has $(wc -l <"$WORK/tunnel.ndjson") lines" >&2; exit 1; }
        line="$line$(python3 -c "print(' %14.0f %12.2fx %13.0f' % ($rows / $run_s, $run_s / $sync_s, $rss_kb / 1024))")"
    fi
    echo "$line"
done
client -e "DROP TABLE IF EXISTS bench_people"
