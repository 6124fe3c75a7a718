#!/usr/bin/env bash
# Starts a throwaway MariaDB server for the MySQL source's tests, on loopback only:
#
#   bash crates/source/tests/mysql/start.sh DIR PORT
#
# DIR is created when missing and holds everything: the data directory, the socket,
# the pid file (DIR/mariadbd.pid) and the server's log (DIR/error.log). Waits until
# the server answers, then creates the database `cdp_test` and the user `cdp` with
# the password `cdp-test-password`, which has every privilege on `cdp_test` and, for
# the tests that change a global setting for a while (`SET GLOBAL
# net_write_timeout`), SUPER. The server also offers TLS, with the test certificate of
# tests/data (test-server.pem, for localhost and 127.0.0.1, signed by test-ca.pem).
# Prints nothing but errors. The tests then read
#
#   CDP_TEST_MYSQL_URL=mysql://cdp@127.0.0.1:PORT/cdp_test
#   CDP_TEST_MYSQL_PASSWORD=cdp-test-password
#
# Needs the Debian packages mariadb-server and mariadb-client (install them with
# /usr/sbin/policy-rc.d answering 101, so the package does not start its own
# server). Run as root, the server runs as the `mysql` user. Stop it with stop.sh.
set -euo pipefail

DIR="${1:?usage: start.sh DIR PORT}"
PORT="${2:?usage: start.sh DIR PORT}"
mkdir -p "$DIR"
DIR="$(cd "$DIR" && pwd)"
DATA="$(cd "$(dirname "${BASH_SOURCE[0]}")/../data" && pwd)"
cp "$DATA/test-server.pem" "$DIR/server.pem"
cp "$DATA/test-server.key" "$DIR/server.key"
chmod 600 "$DIR/server.key"

# The server lives in /usr/sbin, which a non-root PATH may lack.
MARIADBD="$(command -v mariadbd || echo /usr/sbin/mariadbd)"

user_args=()
if [ "$(id -u)" = 0 ]; then
    chown mysql: "$DIR" "$DIR/server.pem" "$DIR/server.key"
    user_args=(--user=mysql)
fi

if [ ! -d "$DIR/data/mysql" ]; then
    if ! mariadb-install-db --no-defaults --datadir="$DIR/data" --auth-root-authentication-method=normal \
        --skip-test-db "${user_args[@]}" >"$DIR/install.log" 2>&1; then
        echo "mariadb-install-db failed; its log:" >&2
        cat "$DIR/install.log" >&2
        exit 1
    fi
fi

# Settings for a test server: loopback only, no DNS, UTF-8 by default, no fsync, TLS.
"$MARIADBD" --no-defaults "${user_args[@]}" --datadir="$DIR/data" --socket="$DIR/sock" \
    --pid-file="$DIR/mariadbd.pid" --log-error="$DIR/error.log" \
    --port="$PORT" --bind-address=127.0.0.1 --skip-name-resolve \
    --character-set-server=utf8mb4 --collation-server=utf8mb4_general_ci \
    --innodb-flush-log-at-trx-commit=0 --innodb-buffer-pool-size=128M --skip-log-bin \
    --ssl-cert="$DIR/server.pem" --ssl-key="$DIR/server.key" \
    >/dev/null 2>&1 &

admin() {
    mariadb --no-defaults --user=root --socket="$DIR/sock" "$@"
}

tries=300
until admin -e "SELECT 1" >/dev/null 2>&1; do
    tries=$((tries - 1))
    if [ "$tries" -le 0 ]; then
        echo "MariaDB did not start on port $PORT; its log:" >&2
        cat "$DIR/error.log" >&2 || true
        exit 1
    fi
    sleep 0.1
done

admin <<'SQL'
CREATE DATABASE IF NOT EXISTS cdp_test CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS 'cdp'@'%' IDENTIFIED BY 'cdp-test-password';
GRANT ALL PRIVILEGES ON cdp_test.* TO 'cdp'@'%';
GRANT SUPER ON *.* TO 'cdp'@'%';
SQL
