#!/usr/bin/env bash
# Reverse ETL from Snowflake to NDJSON at volume, against the Snowflake test front
# (crates/source/tests/snowflake/front.py: fakesnow behind key-pair JWT checks,
# Snowflake's JSON result format, the first rows inline and the rest in gzip'd chunks).
#
#   bash benches/scripts/snowflake_rows.sh [ROWS...]        (default: 100000 1000000)
#
# Starts the front on a free loopback port (install.sh's python), registers a user with
# the test key, builds `reverse_etl` in release with the `snowflake` feature, and for
# each ROWS runs `reverse_etl once` on a sync whose query generates that many people
# (TABLE(GENERATOR(ROWCOUNT => ROWS)), six columns), identify calls into an NDJSON file
# (its lines counted, then removed). Columns:
#
#   sync_s, sync_rows_s  wall clock of `reverse_etl once` (process start, JWT login, the
#                        query, every chunk, the file), and ROWS / sync_s
#   sync_cpu_s           its user + system CPU seconds
#   sync_rss_mb          its peak RSS (/usr/bin/time %M)
#   rows_s_after_answer  ROWS / (sync_s - front_answer_s): our speed once the front has
#                        answered the query
#   front_answer_s       the query request's arrival at the front to the first chunk
#                        request: fakesnow runs the query, then the front encodes every
#                        cell in Python and gzips every chunk before it answers
#   chunk_span_s         first to last chunk request (we fetch the next chunk while the
#                        rows of the current one are decoded, mapped and written)
#   front_cpu_s          the front's CPU seconds during the sync
#   front_only_rows_s    a minimal Python client against the same front: login, the same
#                        query, every chunk downloaded, gunzipped and parsed (no mapping,
#                        no output): the speed at which the front hands rows over, as
#                        `psql \copy` is in reverse_etl_vs_psql.sh
#
# Environment: SNOWFLAKE_FRONT_VENV / PYTHON as install.sh takes them; INLINE_ROWS and
# ROWS_PER_CHUNK (the front's defaults, 1000 and 10000) to shape the result.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
SIZES=("${@:-100000 1000000}")
WORK="$(mktemp -d /tmp/cdp-sf-rows.XXXXXX)"
FRONT_PID=""
cleanup() {
    if [ -n "$FRONT_PID" ]; then
        kill "$FRONT_PID" 2>/dev/null || true
        wait "$FRONT_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT
[ -x /usr/bin/time ] || { echo "snowflake_rows.sh: needs /usr/bin/time (apt-get install time)" >&2; exit 1; }

PY="$(bash crates/source/tests/snowflake/install.sh)"
"$PY" crates/source/tests/snowflake/front.py --port 0 --port-file "$WORK/port" --account TESTACCOUNT \
    --inline-rows "${INLINE_ROWS:-1000}" --rows-per-chunk "${ROWS_PER_CHUNK:-10000}" >"$WORK/front.log" 2>&1 &
FRONT_PID=$!
for _ in $(seq 1 300); do
    [ -s "$WORK/port" ] && break
    kill -0 "$FRONT_PID" 2>/dev/null || { cat "$WORK/front.log" >&2; exit 1; }
    sleep 0.1
done
[ -s "$WORK/port" ] || { echo "snowflake_rows.sh: the front did not start" >&2; cat "$WORK/front.log" >&2; exit 1; }
URL="http://127.0.0.1:$(cat "$WORK/port")"
USER_NAME="CDP_BENCH_$$"
KEY="$PWD/crates/source/tests/data/snowflake-key.p8"
"$PY" - "$URL" "$USER_NAME" crates/source/tests/data/snowflake-key.pub <<'PY'
import json, sys, urllib.request
url, user, pub = sys.argv[1:4]
body = json.dumps({"user": user, "public_key_pem": open(pub).read()}).encode()
req = urllib.request.Request(url + "/_cdp_test/users", data=body, headers={"Content-Type": "application/json"})
urllib.request.urlopen(req).read()
PY

cargo build --release -p cdp-warehouse --example reverse_etl --features snowflake >/dev/null 2>&1 \
    || cargo build --release -p cdp-warehouse --example reverse_etl --features snowflake
BIN=target/release/examples/reverse_etl

# The front-only client: login, the query, every chunk downloaded, gunzipped and parsed.
cat >"$WORK/front_only.py" <<'PY'
import base64, gzip, hashlib, json, sys, time, urllib.request, uuid
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

url, account, user, key_file, sql = sys.argv[1:6]
key = serialization.load_pem_private_key(open(key_file, "rb").read(), None)
der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
fingerprint = "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
b64 = lambda b: base64.urlsafe_b64encode(b).rstrip(b"=").decode()
now, who = int(time.time()), f"{account.upper()}.{user.upper()}"
signing = b64(b'{"alg":"RS256","typ":"JWT"}') + "." + b64(json.dumps(
    {"iss": f"{who}.{fingerprint}", "sub": who, "iat": now, "exp": now + 3600}).encode())
jwt = signing + "." + b64(key.sign(signing.encode(), padding.PKCS1v15(), hashes.SHA256()))

def post(path, body, token=None):
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f'Snowflake Token="{token}"'
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers=headers)
    with urllib.request.urlopen(req, timeout=3600) as answer:
        return json.loads(answer.read())

login = post("/session/v1/login-request?databaseName=CDP_BENCH&schemaName=PUBLIC", {"data": {"ACCOUNT_NAME": account, "LOGIN_NAME": user,
                                                    "AUTHENTICATOR": "SNOWFLAKE_JWT", "TOKEN": jwt}})
token = login["data"]["token"]
start = time.time()
answer = post(f"/queries/v1/query-request?requestId={uuid.uuid4()}",
              {"sqlText": sql, "asyncExec": False, "sequenceId": 1}, token)
assert answer["success"], answer
answered = time.time()
data = answer["data"]
rows = len(data["rowset"])
for chunk in data.get("chunks") or []:
    req = urllib.request.Request(chunk["url"], headers=data.get("chunkHeaders") or {})
    with urllib.request.urlopen(req, timeout=3600) as response:
        rows += len(json.loads(b"[" + gzip.decompress(response.read()) + b"]"))
done = time.time()
print(rows, answered - start, done - start, len(data.get("chunks") or []))
PY

# Where the front spent its time during one run: from its request log (the query
# request's arrival, the first and last chunk requests) and its CPU seconds.
cat >"$WORK/front_phases.py" <<'PY'
import json, sys, urllib.request
url = sys.argv[1]
log = json.loads(urllib.request.urlopen(url + "/_cdp_test/log").read())
query = [e for e in log if e["path"] == "/queries/v1/query-request"][-1]
chunks = [e for e in log if e["path"].startswith("/_chunks/") and e["seq"] > query["seq"]]
first = chunks[0]["ts"] if chunks else query["ts"]
last = chunks[-1]["ts"] if chunks else query["ts"]
print("%.2f %.2f %d" % (first - query["ts"], last - first, len(chunks)))
PY

cpu_seconds() { # utime + stime of the front, in seconds
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$FRONT_PID/stat"
}

query_for() {
    echo "SELECT seq4() AS \"userId\", 'person' || seq4() || '@example.com' AS \"email\", IFF(seq4() % 2 = 0, 'free', 'pro') AS \"plan\", (seq4() % 1000) / 10.0 AS \"score\", seq4() % 3 = 0 AS \"active\", DATEADD(second, seq4(), '2026-01-01'::TIMESTAMP_NTZ) AS \"created_at\" FROM TABLE(GENERATOR(ROWCOUNT => $1)) WHERE {{last_sync_time}} >= 0"
}

echo "front: $URL (inline rows ${INLINE_ROWS:-1000}, ${ROWS_PER_CHUNK:-10000} rows per chunk); binary: $BIN"
printf '%-9s %7s %11s %10s %11s %13s | %14s %12s %11s %6s %17s\n' rows sync_s sync_rows_s sync_cpu_s \
    sync_rss_mb rows_s_after_answer front_answer_s chunk_span_s front_cpu_s chunks front_only_rows_s
for rows in ${SIZES[*]}; do
    QUERY="$(query_for "$rows")"
    rm -rf "$WORK/state" "$WORK/calls.ndjson"
    cat >"$WORK/sync.toml" <<TOML
state_dir = "$WORK/state"
[sources.snowflake]
kind = "snowflake"
account = "testaccount"
user = "$USER_NAME"
database = "CDP_BENCH"
schema = "PUBLIC"
private_key_path = "$KEY"
statement_timeout = "1h"
base_url = "$URL"
[destinations.file]
kind = "ndjson"
path = "$WORK/calls.ndjson"
[[syncs]]
name = "people"
type = "identify"
source = "snowflake"
destination = "file"
query = '''$QUERY'''
every = "1h"
TOML
    "$PY" - "$URL" <<'PY'
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1] + "/_cdp_test/log", method="DELETE")).read()
PY
    cpu_before=$(cpu_seconds)
    /usr/bin/time -o "$WORK/t" -f "%e %M %U %S" "$BIN" --config "$WORK/sync.toml" once people >"$WORK/out" 2>"$WORK/err"
    cpu_after=$(cpu_seconds)
    read -r sync_s rss_kb user_s sys_s <"$WORK/t"
    grep -q "$rows rows read, $rows calls delivered, 0 row errors" "$WORK/out" \
        || { cat "$WORK/out" "$WORK/err" >&2; exit 1; }
    lines=$(wc -l <"$WORK/calls.ndjson")
    [ "$lines" -eq "$rows" ] || { echo "calls.ndjson has $lines lines, want $rows" >&2; exit 1; }
    read -r answer_s span_s chunks < <("$PY" "$WORK/front_phases.py" "$URL")
    rm -f "$WORK/calls.ndjson"
    read -r got_rows _ front_only_s _ < <("$PY" "$WORK/front_only.py" "$URL" testaccount "$USER_NAME" "$KEY" \
        "${QUERY//\{\{last_sync_time\}\}/0}")
    [ "$got_rows" -eq "$rows" ] || { echo "the front-only client read $got_rows rows, want $rows" >&2; exit 1; }
    python3 -c "print('%-9d %7.2f %11.0f %10.2f %11.1f %13.0f | %14.2f %12.2f %11.2f %6d %17.0f' % ($rows, $sync_s, \
        $rows / $sync_s, $user_s + $sys_s, $rss_kb / 1024, $rows / max($sync_s - $answer_s, 0.01), $answer_s, $span_s, \
        $cpu_after - $cpu_before, $chunks, $rows / $front_only_s))"
done
