#!/usr/bin/env bash
# A diff sync (issue 16) from PostgreSQL, side by side with `psql \copy (query) to
# stdout` of the same query: the table is synced once (every row new), 1% of its
# rows change, and the second run (which reads the whole result, diffs it against
# the snapshot and sends only the changes) is timed against psql reading the same
# result. Reports both times, the ratio, the calls sent and the run's peak RSS.
#
#   bash benches/scripts/diff_sync_vs_psql.sh POSTGRES_URL [ROWS...]
#
# ROWS defaults to 1000000 10000000. Needs psql; the PostgreSQL server can be the
# tests' (bash .ci/test bash -c 'bash benches/scripts/diff_sync_vs_psql.sh "$CDP_TEST_POSTGRES_URL"').
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
URL="${1:?usage: diff_sync_vs_psql.sh POSTGRES_URL [ROWS...]}"
shift
SIZES=("${@:-1000000 10000000}")
WORK="$(mktemp -d /tmp/cdp-diff.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --example reverse_etl >/dev/null 2>&1
QUERY='SELECT id AS "userId", email, plan, score, active, city FROM bench_people'
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
mode = "diff"
primary_key = "userId"
TOML
printf '%-9s %10s %10s %10s %12s %12s %10s\n' rows first_s psql_s diff_s diff/psql calls_sent rss_mb
for rows in ${SIZES[*]}; do
    psql -q "$URL" -c "SET client_min_messages = warning" -c "DROP TABLE IF EXISTS bench_people" \
        -c "CREATE TABLE bench_people AS SELECT i AS id, 'person' || i || '@example.com' AS email,
              (ARRAY['free','pro'])[1 + i % 2] AS plan, (i % 1000) / 10.0 AS score, i % 3 = 0 AS active,
              (ARRAY['Berlin','Lisbon','Osaka'])[1 + i % 3] AS city
            FROM generate_series(1, $rows) AS i" >/dev/null
    rm -rf "$WORK/state"
    /usr/bin/time -o "$WORK/t0" -f "%e %M" target/release/examples/reverse_etl --config "$WORK/sync.toml" once people >"$WORK/out0" 2>/dev/null
    read -r first_s _ <"$WORK/t0"
    grep -q "$rows calls delivered" "$WORK/out0" || { cat "$WORK/out0"; exit 1; }
    psql -q "$URL" -c "UPDATE bench_people SET score = score + 1 WHERE id % 100 = 0" >/dev/null
    start=$(date +%s.%N)
    psql -q "$URL" -c "\\copy ($QUERY) to stdout" >/dev/null
    psql_s=$(python3 -c "import time; print(time.time() - $start)")
    /usr/bin/time -o "$WORK/t" -f "%e %M" target/release/examples/reverse_etl --config "$WORK/sync.toml" once people >"$WORK/out" 2>/dev/null
    read -r diff_s rss_kb <"$WORK/t"
    sent=$(grep -o '[0-9]* calls delivered' "$WORK/out" | grep -o '^[0-9]*')
    [ "$sent" = "$((rows / 100))" ] || { cat "$WORK/out"; echo "expected $((rows / 100)) calls" >&2; exit 1; }
    python3 -c "print('%-9d %10.1f %10.1f %10.1f %11.2fx %12d %10.0f' % ($rows, $first_s, $psql_s, $diff_s, $diff_s / $psql_s, $sent, $rss_kb / 1024))"
done
