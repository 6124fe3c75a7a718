#!/usr/bin/env bash
# Installs what the real-SDK drivers need: the pinned Python SDKs (requirements.txt)
# and the pinned Node SDKs (package.json / package-lock.json, into ./node_modules).
# Idempotent and non-interactive: does nothing when everything is already in place.
# Exits non-zero, saying what is missing, when something cannot be installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

die() { echo "sdk/install.sh: $*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed"
python3 -m pip --version >/dev/null 2>&1 || die "pip is not available for python3 (apt-get install python3-pip)"
command -v node >/dev/null || die "node is not installed (Node 18 or newer is needed)"
command -v npm >/dev/null || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old: Node 18 or newer is needed (global fetch)"

# ---- Python: install only when a pinned requirement is missing or at another version.
python_ok() {
    python3 - <<'PY'
import importlib.metadata as md, re, sys
for line in open("requirements.txt", encoding="utf-8"):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        have = md.version(name.strip())
    except md.PackageNotFoundError:
        sys.exit(1)
    if want and have != want.strip():
        sys.exit(1)
import segment.analytics, customerio.analytics  # noqa: F401  (importable, not just listed)
PY
}
if ! python_ok 2>/dev/null; then
    echo "sdk/install.sh: installing the Python SDKs (requirements.txt)" >&2
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore -r requirements.txt \
        || die "pip could not install requirements.txt"
    python_ok || die "the Python SDKs are still not importable at the pinned versions after pip install"
fi

# ---- Node: npm ci when node_modules is missing or was installed from another lockfile.
lock_sum=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
stamp=node_modules/.cdp-sdk-install-stamp
node_ok() {
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ] \
        && node -e 'require("@segment/analytics-node"); require("@customerio/cdp-analytics-node")' >/dev/null 2>&1
}
if ! node_ok; then
    echo "sdk/install.sh: installing the Node SDKs (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
    echo "$lock_sum" > "$stamp"
    node_ok || die "the Node SDKs are still not loadable after npm ci"
fi
