#!/usr/bin/env bash
# Installs what the Snowflake test front needs (requirements.txt beside this file) into a
# virtualenv, and prints that virtualenv's python on stdout (progress goes to stderr):
#
#   PY=$(bash crates/source/tests/snowflake/install.sh)
#   "$PY" crates/source/tests/snowflake/front.py --port 0 --port-file /tmp/sf.port --users users.json
#
# Idempotent: when the virtualenv exists, was built from this very requirements.txt and
# imports fine, nothing is installed.  Fails loudly (non-zero exit, message on stderr)
# when Python, venv or pip fail.
#
# Environment:
#   SNOWFLAKE_FRONT_VENV  where the virtualenv lives
#                         (default: ${XDG_CACHE_HOME:-$HOME/.cache}/cdp-warehouse/snowflake-front-venv)
#   PYTHON                the interpreter to build it with (default: python3; needs 3.10+)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
req="$here/requirements.txt"
venv="${SNOWFLAKE_FRONT_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/cdp-warehouse/snowflake-front-venv}"
python="${PYTHON:-python3}"

die() { echo "install.sh: $*" >&2; exit 1; }
log() { echo "install.sh: $*" >&2; }

[ -f "$req" ] || die "missing $req"
command -v "$python" >/dev/null 2>&1 || die "no '$python' on PATH (set PYTHON=/path/to/python3.10+)"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' \
  || die "$("$python" --version 2>&1) is too old; fakesnow 0.12.1 needs Python 3.10+"

want="$( (cat "$req"; "$python" -c 'import sys; print(sys.version)') | sha256sum | cut -d' ' -f1)"
stamp="$venv/.cdp-requirements.sha256"
vpy="$venv/bin/python"

check() {
  "$vpy" - <<'PY' >/dev/null 2>&1
import cryptography, duckdb, fakesnow, pyarrow, snowflake.connector  # noqa: F401
from fakesnow.instance import FakeSnow
FakeSnow().connect("DB", "S").cursor().execute("select 1")
PY
}

if [ -x "$vpy" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && check; then
  log "up to date: $venv"
  echo "$vpy"
  exit 0
fi

log "building $venv from $req"
rm -rf "$venv"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv" || die "python -m venv failed (on Debian: apt-get install python3-venv)"
"$vpy" -m pip install --disable-pip-version-check --quiet --upgrade pip >&2 \
  || die "could not upgrade pip in $venv"
"$vpy" -m pip install --disable-pip-version-check --quiet --requirement "$req" >&2 \
  || die "pip install -r $req failed"
check || die "installed, but fakesnow does not import or run in $venv"
echo "$want" > "$stamp"
log "ready: $venv"
echo "$vpy"
