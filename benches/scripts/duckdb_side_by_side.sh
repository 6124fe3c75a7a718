#!/usr/bin/env bash
# NDJSON to files, side by side with the DuckDB peer, on the same input in one run.
#
#   bash benches/scripts/duckdb_side_by_side.sh [CALLS] [REPEATS]
#
# Generates CALLS calls (default 200,000) with the peer's generator, then for each
# format reports, best of REPEATS runs (default 3), runs interleaved:
#
# - wall-clock on the whole machine: the peer (../shared/bench/peer_duckdb.py) with
#   1 and with 2 threads, its best taken, against the export example on its default
#   threads (one per core), both unpinned;
# - CPU time (user + sys) on one core: the peer with 1 thread and the export, each
#   pinned to the same CPU with taskset (the export then parses on its main thread).
#
# Both tools write without syncing to disk (`--no-fsync`, as DuckDB does not sync).
# Times are of the whole process as a user runs it (for the peer: Python, importing
# duckdb and its script). Needs python3 with duckdb (pip install duckdb) and a
# release build of the example (built here).
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

# Runs a command under /usr/bin/time; prints "wall cpu" (seconds).
timed() {
    rm -rf "$WORK/out"
    /usr/bin/time -o "$WORK/t" -f "%e %U %S" "$@" >/dev/null 2>&1
    awk '{printf "%s %s\n", $1, $2 + $3}' "$WORK/t"
}
min() { python3 -c "print(min($1, $2))"; }

echo "uptime: $(uptime)"
printf '%-8s %10s %10s %10s %9s | %10s %10s %9s\n' format duck_wall1 duck_wall2 export_wall wall_ratio duck_cpu1 export_cpu cpu_ratio
for fmt in parquet csv json; do
    dw1=999 dw2=999 ow=999 dc=999 oc=999
    for _ in $(seq "$REPEATS"); do
        read -r w _ < <(timed python3 "$PEER" "$WORK/calls.ndjson" "$WORK/out" "$fmt" 1); dw1=$(min "$dw1" "$w")
        read -r w _ < <(timed python3 "$PEER" "$WORK/calls.ndjson" "$WORK/out" "$fmt" 2); dw2=$(min "$dw2" "$w")
        read -r w _ < <(timed "$EXPORT" --no-fsync --format "$fmt" --bucket "$WORK/out" "$WORK/calls.ndjson"); ow=$(min "$ow" "$w")
        read -r _ c < <(timed taskset -c "$CPU" python3 "$PEER" "$WORK/calls.ndjson" "$WORK/out" "$fmt" 1); dc=$(min "$dc" "$c")
        read -r _ c < <(timed taskset -c "$CPU" "$EXPORT" --no-fsync --format "$fmt" --bucket "$WORK/out" "$WORK/calls.ndjson"); oc=$(min "$oc" "$c")
    done
    best=$(min "$dw1" "$dw2")
    printf '%-8s %10.2f %10.2f %10.2f %8.1fx | %10.2f %10.2f %8.1fx\n' "$fmt" "$dw1" "$dw2" "$ow" \
        "$(python3 -c "print($best / $ow)")" "$dc" "$oc" "$(python3 -c "print($dc / $oc)")"
done
