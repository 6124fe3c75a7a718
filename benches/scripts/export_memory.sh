#!/usr/bin/env bash
# Peak RSS of the export over long inputs whose `receivedAt` goes back in time.
#
#   bash benches/scripts/export_memory.sh [MILLIONS...]
#
# Generates 1,000,000 calls once (the peer's generator, seed 7) and streams them
# MILLIONS times over (default 2 8 16) into `export --format F --bucket DIR -`:
# each repeat starts again at the first `receivedAt`, so from the second million
# on every call arrives out of order against the ones before it. The input never
# lands on disk as a whole (it is `cat` into the export's standard input); the
# files written do, and are deleted after each run (16 M calls of JSON take about
# 13 GB while they exist).
#
# For each format (FORMATS, default "json csv parquet") and size it reports the
# wall-clock time, the peak RSS (VmHWM, as /usr/bin/time reports it), and the
# highest RSS seen in each eighth of the run (sampled every 0.1 s): memory that
# grows with the input shows as eighths that keep rising, memory that is bounded as
# eighths that level off. ENV is passed to the export's environment (for example
# ENV=MIMALLOC_PURGE_DELAY=0 to see what is live, with mimalloc giving freed pages
# back at once).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SIZES=("${@:-2 8 16}")
FORMATS="${FORMATS:-json csv parquet}"
WORK="$(mktemp -d /tmp/cdp-memory.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
cargo build --release --example export >/dev/null 2>&1
EXPORT="$(pwd)/target/release/examples/export"
python3 benches/data/gen_calls.py 1000000 7 >"$WORK/calls.ndjson"

echo "uptime: $(uptime)"
printf '%-8s %6s %8s %8s  %s\n' format calls wall_s peak_mb "max RSS (MB) per eighth of the run"
for size in ${SIZES[*]}; do
    for format in $FORMATS; do
        rm -rf "$WORK/out" && mkdir "$WORK/out"
        (for _ in $(seq 1 "$size"); do cat "$WORK/calls.ndjson"; done) |
            env ${ENV:-} /usr/bin/time -o "$WORK/time" -f "%e %M" \
                "$EXPORT" --no-fsync --format "$format" --bucket "$WORK/out" - >/dev/null 2>"$WORK/err" &
        sleep 0.05
        pid="$(pgrep -n -f "$EXPORT --no-fsync --format $format --bucket $WORK/out")" || pid=""
        : >"$WORK/rss"
        while [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; do
            awk '/^VmRSS/ { print int($2 / 1024) }' "/proc/$pid/status" >>"$WORK/rss" 2>/dev/null || true
            sleep 0.1
        done
        status=0
        wait %1 || status=$?
        # Exit status 2 (some lines rejected) is not expected here: the input has no bad lines.
        [ "$status" = 0 ] || { echo "export failed ($status):"; cat "$WORK/err"; exit 1; }
        read -r wall peak_kb <"$WORK/time"
        eighths="$(awk '{ v[NR] = $1 } END {
            for (e = 0; e < 8; e++) {
                m = 0
                for (i = int(e * NR / 8) + 1; i <= int((e + 1) * NR / 8); i++) if (v[i] > m) m = v[i]
                printf "%d ", m
            }
        }' "$WORK/rss")"
        printf '%-8s %5sM %8.1f %8d  %s\n' "$format" "$size" "$wall" $((peak_kb / 1024)) "$eighths"
        rm -rf "$WORK/out"
    done
done
