#!/usr/bin/env bash
# Starts a throwaway OpenSSH server for the SSH tunnel tests, on loopback only:
#
#   bash crates/source/tests/ssh/start.sh DIR PORT
#
# DIR holds everything: the host key (DIR/host_key, made on the first start and
# kept, so a restarted server shows the same key), DIR/sshd_config, the
# authorized keys the tests write (DIR/authorized_keys), DIR/sshd.pid and the log
# DIR/sshd.log. Public-key logins only, TCP forwarding allowed. Prints nothing but
# errors; returns once the server listens. Stop it with `kill "$(cat DIR/sshd.pid)"`.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: start.sh DIR PORT" >&2
    exit 2
fi
dir="$(mkdir -p "$1" && cd "$1" && pwd)"
port="$2"
sshd=/usr/sbin/sshd
if [ ! -x "$sshd" ]; then
    echo "start.sh: $sshd is missing: install Debian's openssh-server" >&2
    exit 1
fi

if [ ! -f "$dir/host_key" ]; then
    ssh-keygen -q -t ed25519 -N '' -C cdp-test-host -f "$dir/host_key" >/dev/null
fi
touch "$dir/authorized_keys"
chmod 600 "$dir/authorized_keys"
cat >"$dir/sshd_config" <<CONFIG
ListenAddress 127.0.0.1
Port $port
HostKey $dir/host_key
AuthorizedKeysFile $dir/authorized_keys
PasswordAuthentication no
KbdInteractiveAuthentication no
PubkeyAuthentication yes
AllowTcpForwarding yes
PermitRootLogin prohibit-password
StrictModes no
UsePAM no
PidFile $dir/sshd.pid
LogLevel VERBOSE
MaxStartups 100:30:200
CONFIG

# The privilege-separation directory sshd insists on.
if [ ! -d /run/sshd ]; then
    if [ "$(id -u)" = 0 ]; then mkdir -p /run/sshd && chmod 755 /run/sshd; else sudo mkdir -p /run/sshd; fi
fi

rm -f "$dir/sshd.pid"
"$sshd" -f "$dir/sshd_config" -E "$dir/sshd.log"

# Wait until it listens (it writes its PID file once bound).
for _ in $(seq 1 100); do
    if [ -s "$dir/sshd.pid" ] && (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        exit 0
    fi
    sleep 0.1
done
echo "start.sh: sshd did not start on 127.0.0.1:$port; its log:" >&2
cat "$dir/sshd.log" >&2 || true
exit 1
