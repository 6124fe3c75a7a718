#!/usr/bin/env bash
# Reverse ETL from PostgreSQL to NDJSON, side by side with `psql \copy (query) to
# stdout` of the same query (the speed at which the server hands the rows over).
#
#   bash benches/scripts/reverse_etl_vs_psql.sh POSTGRES_URL [ROWS...]
#
# For each ROWS (default 1000000 5000000) it fills a table with that many people
# (vacuumed, so neither side pays for setting hint bits), then runs REPEAT (default
# 1) pairs of psql and `reverse_etl once` (identify calls to /dev/null), psql first
# in odd pairs and the sync first in even ones, and reports per pair: wall-clock
# time and CPU time (user + system) of each, the ratio of wall-clock times, the
# rows per second and the peak RSS of the sync, and the load average before the
# pair. The machine's other work shows in the load: run it idle for figures to
# quote. SYNC_BIN replaces the sync's binary (to compare builds in one run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
URL="${1:?usage: reverse_etl_vs_psql.sh POSTGRES_URL [ROWS...]}"
shift
SIZES=("${@:-1000000 5000000}")
REPEAT="${REPEAT:-1}"
WORK="$(mktemp -d /tmp/cdp-retl.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
if [ -z "${SYNC_BIN:-}" ]; then
    cargo build --release --example reverse_etl >/dev/null 2>&1
    SYNC_BIN=target/release/examples/reverse_etl
fi
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

run_psql() {
    /usr/bin/time -o "$WORK/tp" -f "%e %U %S" psql -q "$URL" -c "\\copy (${QUERY//\{\{last_sync_time\}\}/0}) to stdout" >/dev/null
}

run_sync() {
    rm -rf "$WORK/state"
    /usr/bin/time -o "$WORK/ts" -f "%e %U %S %M" "$SYNC_BIN" --config "$WORK/sync.toml" once people >"$WORK/out" 2>/dev/null
    grep -q "$1 rows read" "$WORK/out" || { cat "$WORK/out"; exit 1; }
}

printf '%-9s %4s %8s %8s %8s %8s %9s %12s %10s %6s\n' \
    rows pair psql_s psql_cpu sync_s sync_cpu sync/psql sync_rows_s sync_rss_mb load
for rows in ${SIZES[*]}; do
    psql -q "$URL" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench_people" \
        -c "CREATE TABLE bench_people AS SELECT i AS id, 'person' || i || '@example.com' AS email,
              (ARRAY['free','pro'])[1 + i % 2] AS plan, (i % 1000) / 10.0 AS score, i % 3 = 0 AS active,
              (ARRAY['Berlin','Lisbon','Osaka'])[1 + i % 3] AS city,
              now() - interval '1 day' AS created_at, now() AS updated_at
            FROM generate_series(1, $rows) AS i" -c "VACUUM ANALYZE bench_people" >/dev/null
    for pair in $(seq 1 "$REPEAT"); do
        load=$(cut -d' ' -f1 /proc/loadavg)
        if [ $((pair % 2)) = 1 ]; then
            run_psql
            run_sync "$rows"
        else
            run_sync "$rows"
            run_psql
        fi
        read -r psql_s psql_user psql_sys <"$WORK/tp"
        read -r sync_s sync_user sync_sys rss_kb <"$WORK/ts"
        python3 -c "print('%-9d %4d %8.2f %8.2f %8.2f %8.2f %8.2fx %12.0f %11.0f %6s' % ($rows, $pair,
            $psql_s, $psql_user + $psql_sys, $sync_s, $sync_user + $sync_sys, $sync_s / $psql_s,
            $rows / $sync_s, $rss_kb / 1024, '$load'))"
    done
done
