#!/usr/bin/env bash
# Load on the collector over loopback: wrk posts 500-call batches for 20 s, once
# at the default durability (fsync at most every second) and once with an fsync
# on every append. Reports accepted calls per second, latency percentiles and the
# collector's peak resident memory.
#
#   bash benches/scripts/collector_load.sh [CONNECTIONS] [SECONDS]
#
# Needs wrk (apt-get install wrk) and a release build of the collector example.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
CONNECTIONS="${1:-8}"
SECONDS_="${2:-20}"
WORK="$(mktemp -d /tmp/cdp-load.XXXXXX)"
trap 'kill $PID 2>/dev/null || true; rm -rf "$WORK"' EXIT
cargo build --release --example collector >/dev/null 2>&1
python3 benches/data/gen_calls.py 500 11 | python3 -c "
import sys, json
calls = [json.loads(l) for l in sys.stdin]
for c in calls:
    c.pop('messageId', None); c.pop('receivedAt', None)
open('$WORK/batch.json', 'w').write(json.dumps({'batch': calls}, separators=(',', ':')))
"
cat >"$WORK/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Basic $(printf 'load-key:' | base64)"
local f = io.open("$WORK/batch.json", "rb")
wrk.body = f:read("*a")
f:close()
LUA
export CDP_LOAD_KEY=load-key
for durability in interval:1s every-append; do
    rm -rf "$WORK/bucket" "$WORK/spool"
    target/release/examples/collector --listen 127.0.0.1:18080 --bucket "$WORK/bucket" --format parquet \
        --interval 10m --spool "$WORK/spool" --write-key-env CDP_LOAD_KEY --durability "$durability" \
        2>"$WORK/collector.log" &
    PID=$!
    for _ in $(seq 50); do curl -s http://127.0.0.1:18080/health >/dev/null && break; sleep 0.1; done
    echo "== durability $durability"
    wrk -t1 -c"$CONNECTIONS" -d"${SECONDS_}s" --latency -s "$WORK/post.lua" http://127.0.0.1:18080/v1/batch \
        | tee "$WORK/wrk.txt" | grep -E "Requests/sec|50%|90%|99%|Non-2xx" || true
    awk '/Requests\/sec/ {printf "accepted calls/s: %.0f\n", $2 * 500}' "$WORK/wrk.txt"
    awk '/VmHWM/ {printf "peak RSS: %.0f MiB\n", $2 / 1024}' /proc/$PID/status
    kill -TERM $PID; wait $PID || true
done
