#!/usr/bin/env bash
# Reverse ETL from PostgreSQL to NDJSON, side by side with `psql \copy (query) to
# stdout` of the same query (the speed at which the server hands the rows over).
#
#   bash benches/scripts/reverse_etl_vs_psql.sh POSTGRES_URL [ROWS...]
#
# For each ROWS (default 1000000 5000000) it fills a table with that many people,
# then times psql and `reverse_etl once` (identify calls to /dev/null) and reports
# rows per second, the ratio, and the peak RSS of the sync.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
URL="${1:?usage: reverse_etl_vs_psql.sh POSTGRES_URL [ROWS...]}"
shift
SIZES=("${@:-1000000 5000000}")
WORK="$(mktemp -d /tmp/cdp-retl.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --example reverse_etl >/dev/null 2>&1
QUERY='SELECT id AS "userId", email, plan, score, active, city, created_at, updated_at FROM bench_people WHERE updated_at > to_timestamp({{last_sync_time}})'
cat >"$WORK/sync.toml" <<TOML
state_dir = "$WORK/state"
[sources.pg]
kind = "postgres"
url = "$URL"
statement_timeout = "1h"
[destinations.null]
kind = "ndjson"
path = "/dev/null"
[[syncs]]
name = "people"
type = "identify"
source = "pg"
destination = "null"
query = '''$QUERY'''
every = "1h"
TOML
printf '%-9s %12s %12s %16s %10s\n' rows psql_rows_s sync_rows_s sync_time/psql sync_rss_mb
for rows in ${SIZES[*]}; do
    psql -q "$URL" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench_people" \
        -c "CREATE TABLE bench_people AS SELECT i AS id, 'person' || i || '@example.com' AS email,
              (ARRAY['free','pro'])[1 + i % 2] AS plan, (i % 1000) / 10.0 AS score, i % 3 = 0 AS active,
              (ARRAY['Berlin','Lisbon','Osaka'])[1 + i % 3] AS city,
              now() - interval '1 day' AS created_at, now() AS updated_at
            FROM generate_series(1, $rows) AS i" >/dev/null
    rm -rf "$WORK/state"
    start=$(date +%s.%N)
    psql -q "$URL" -c "\\copy (${QUERY//\{\{last_sync_time\}\}/0}) to stdout" >/dev/null
    psql_s=$(python3 -c "import time; print(time.time() - $start)")
    /usr/bin/time -o "$WORK/t" -f "%e %M" target/release/examples/reverse_etl --config "$WORK/sync.toml" once people >"$WORK/out" 2>/dev/null
    read -r sync_s rss_kb <"$WORK/t"
    grep -q "$rows rows read" "$WORK/out" || { cat "$WORK/out"; exit 1; }
    python3 -c "print('%-9d %12.0f %12.0f %15.2fx %10.0f' % ($rows, $rows / $psql_s, $rows / $sync_s, $sync_s / $psql_s, $rss_kb / 1024))"
done
