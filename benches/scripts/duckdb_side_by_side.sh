#!/usr/bin/env bash
# NDJSON to files, side by side with the DuckDB peer, on the same input in one run.
#
#   bash benches/scripts/duckdb_side_by_side.sh [CALLS] [REPEATS]
#
# Generates CALLS calls (default 200,000) with the peer's generator, then for each
# format runs the peer (../shared/bench/peer_duckdb.py, one thread) and the export
# example (--no-fsync, as DuckDB does not sync), each pinned to the same CPU, and
# reports the best CPU time (user + sys) of REPEATS runs (default 3) and the ratio.
# Needs python3 with duckdb (pip install duckdb) and a release build of the example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CALLS="${1:-200000}"
REPEATS="${2:-3}"
PEER="${PEER:-../shared/bench/peer_duckdb.py}"
CPU="${CPU:-1}"
WORK="$(mktemp -d /tmp/cdp-duckdb.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --example export >/dev/null 2>&1
EXPORT=target/release/examples/export
python3 benches/data/gen_calls.py "$CALLS" >"$WORK/calls.ndjson"
printf '%-8s %12s %12s %8s\n' format duckdb_cpu_s export_cpu_s ratio
for fmt in parquet csv json; do
    best_d=999999 best_o=999999
    for _ in $(seq "$REPEATS"); do
        rm -rf "$WORK/d" "$WORK/o"
        /usr/bin/time -o "$WORK/t" -f "%U %S" taskset -c "$CPU" python3 "$PEER" "$WORK/calls.ndjson" "$WORK/d" "$fmt" 1 >/dev/null 2>&1
        d=$(awk '{print $1 + $2}' "$WORK/t")
        /usr/bin/time -o "$WORK/t" -f "%U %S" taskset -c "$CPU" "$EXPORT" --no-fsync --format "$fmt" --bucket "$WORK/o" "$WORK/calls.ndjson" >/dev/null 2>&1
        o=$(awk '{print $1 + $2}' "$WORK/t")
        best_d=$(python3 -c "print(min($best_d, $d))")
        best_o=$(python3 -c "print(min($best_o, $o))")
    done
    printf '%-8s %12.2f %12.2f %7.1fx\n' "$fmt" "$best_d" "$best_o" "$(python3 -c "print($best_d / $best_o)")"
done
