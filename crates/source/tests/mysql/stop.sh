#!/usr/bin/env bash
# Stops the MariaDB server that start.sh started in DIR, and waits until it is gone:
#
#   bash crates/source/tests/mysql/stop.sh DIR
set -euo pipefail

DIR="${1:?usage: stop.sh DIR}"
PID_FILE="$DIR/mariadbd.pid"
[ -f "$PID_FILE" ] || exit 0
PID="$(cat "$PID_FILE")"
kill "$PID" 2>/dev/null || exit 0
for _ in $(seq 300); do
    kill -0 "$PID" 2>/dev/null || exit 0
    sleep 0.1
done
echo "MariaDB (pid $PID) did not stop within 30 s; killing it" >&2
kill -9 "$PID" 2>/dev/null || true
