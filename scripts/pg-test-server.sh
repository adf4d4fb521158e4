#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (CI's .ci/run and developers alike).
#
#   bash scripts/pg-test-server.sh start   # install (apt, as root) if missing, start, print the URL
#   bash scripts/pg-test-server.sh url     # the URL of the running server
#   bash scripts/pg-test-server.sh stop    # stop it and delete its data
#   export GRIDFLOW_TEST_PG_URL="$(bash scripts/pg-test-server.sh url)"
#
# The cluster lives in .ci/pg/ of this clone (git-ignored), listens on 127.0.0.1 only, on a
# free port, no Unix socket; password auth for the user `gridflow`, database `gridflow_test`.
# fsync is off: the data is thrown away. As root, the server runs as the `postgres` user
# (the Debian package creates it); otherwise as the calling user. `start` on a running
# server only prints its URL; a server that is not running is re-created from scratch.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="${GRIDFLOW_PG_DIR:-$ROOT/.ci/pg}"   # url, and cluster/ (or a pointer to it)
DB=gridflow_test
USER_NAME=gridflow

die() { echo "pg-test-server: $*" >&2; exit 1; }

bindir() {  # the newest installed server's bin directory, or nothing
    ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

as_owner() {  # run a command as the server's owner
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cluster_dir() {  # where the cluster is (a pointer file when it could not be under STATE)
    if [ -f "$STATE/cluster-dir" ]; then cat "$STATE/cluster-dir"; else echo "$STATE/cluster"; fi
}

install_server() {
    [ -n "$(bindir)" ] && [ -x "$(bindir)/initdb" ] && return 0
    [ "$(id -u)" = 0 ] || die "PostgreSQL is not installed: sudo apt-get install -y postgresql"
    echo "pg-test-server: installing PostgreSQL (apt-get install postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql >/dev/null
    [ -x "$(bindir)/initdb" ] || die "apt-get installed postgresql but no initdb was found"
}

running() {
    local dir
    dir="$(cluster_dir)"
    [ -f "$dir/data/PG_VERSION" ] && as_owner "$(bindir)/pg_ctl" status -D "$dir/data" >/dev/null 2>&1
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

cmd_start() {
    install_server
    if running && [ -s "$STATE/url" ]; then cat "$STATE/url"; return 0; fi
    cmd_stop >/dev/null 2>&1 || true
    mkdir -p "$STATE"
    echo '*' > "$STATE/.gitignore"
    local dir="$STATE/cluster"
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
        chown postgres: "$dir"
        if ! runuser -u postgres -- test -w "$dir"; then  # a parent the postgres user can't enter
            rm -rf "$dir"
            dir="$(mktemp -d /tmp/gridflow-pg.XXXXXX)"
            chown postgres: "$dir"
            echo "$dir" > "$STATE/cluster-dir"
        fi
    fi
    local bin pw port attempt
    bin="$(bindir)"
    pw="$(python3 -c 'import secrets; print(secrets.token_hex(16))')"
    (umask 077; echo "$pw" > "$dir/pwfile")
    [ "$(id -u)" = 0 ] && chown postgres: "$dir/pwfile"
    as_owner "$bin/initdb" -D "$dir/data" -U "$USER_NAME" --pwfile="$dir/pwfile" \
        --auth=scram-sha-256 -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    rm -f "$dir/pwfile"
    cat >> "$dir/data/postgresql.conf" <<'EOF'
# pg-test-server.sh: a throwaway test server
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    for attempt in 1 2 3; do  # a port found free may be taken before the server binds it
        port="$(free_port)"
        as_owner "$bin/pg_ctl" start -D "$dir/data" -l "$dir/server.log" -w -t 60 \
            -o "-p $port" >/dev/null && break
        [ "$attempt" = 3 ] && { tail -n 20 "$dir/server.log" >&2; die "the server did not start"; }
    done
    PGPASSWORD="$pw" "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$USER_NAME" "$DB"
    (umask 077; echo "postgresql+psycopg://$USER_NAME:$pw@127.0.0.1:$port/$DB" > "$STATE/url")
    cat "$STATE/url"
}

cmd_stop() {
    local dir
    dir="$(cluster_dir)"
    if [ -n "$(bindir)" ] && [ -f "$dir/data/PG_VERSION" ]; then
        as_owner "$(bindir)/pg_ctl" stop -D "$dir/data" -m fast -w >/dev/null 2>&1 || true
    fi
    rm -rf "$dir" "$STATE/url" "$STATE/cluster-dir"
}

cmd_url() {
    running && [ -s "$STATE/url" ] || die "no test server running: bash scripts/pg-test-server.sh start"
    cat "$STATE/url"
}

case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    url) cmd_url ;;
    *) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
