#!/usr/bin/env bash
# Installs Azurite, Microsoft's Azure Storage emulator, at the version pinned in
# package.json / package-lock.json, into ./node_modules: the conformance suite's Azure
# Blob backend (`bash .ci/test` starts ./node_modules/.bin/azurite-blob on loopback).
# Idempotent and non-interactive: does nothing when it is already in place.
# Exits non-zero, saying what is missing, when it cannot be installed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

die() { echo "azurite/install.sh: $*" >&2; exit 1; }

command -v node >/dev/null || die "node is not installed (Node 18 or newer is needed)"
command -v npm >/dev/null || die "npm is not installed"
node_major=$(node -p 'process.versions.node.split(".")[0]')
[ "$node_major" -ge 18 ] || die "node $(node --version) is too old: Node 18 or newer is needed"

# npm ci when node_modules is missing or was installed from another lockfile.
lock_sum=$(sha256sum package-lock.json package.json | sha256sum | cut -d' ' -f1)
stamp=node_modules/.cdp-azurite-install-stamp
azurite_ok() {
    [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$lock_sum" ] \
        && node_modules/.bin/azurite-blob --version >/dev/null 2>&1
}
if ! azurite_ok; then
    echo "azurite/install.sh: installing Azurite (npm ci)" >&2
    npm ci --no-audit --no-fund --loglevel=error >&2 || die "npm ci failed"
    echo "$lock_sum" > "$stamp"
    azurite_ok || die "azurite-blob still does not run after npm ci"
fi
