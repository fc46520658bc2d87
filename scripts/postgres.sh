#!/usr/bin/env bash
# Starts (or reuses) a throwaway PostgreSQL cluster for the tests and prints its URL on stdout.
#
# - Installs Debian's postgresql package when no server is installed (needs root, as CI is).
# - The cluster lives in $HUB_PG_DIR (default /tmp/hub-postgres-$PORT), owned by the `postgres` user when run
#   as root (the server refuses to run as root), listens on 127.0.0.1:$HUB_PG_PORT (default 54329) with a
#   private socket directory and password (scram) authentication.
# - Copes with a stale postmaster.pid left by a killed server; creates the role and database idempotently.
# Durability settings are relaxed (fsync off): this cluster is for tests only.
# `scripts/postgres.sh stop` stops the cluster of $HUB_PG_PORT / $HUB_PG_DIR (a test of the hub without its database
# uses a cluster of its own for that).
set -euo pipefail

# The server becomes a daemon: it must not keep descriptors our caller passed down, or a caller that waits for one of
# them to close (Foundation's Process watches a socket its child inherits) waits for as long as the server runs.
# Bash reads this script through descriptor 255, which stays.
for fd in "/proc/$$/fd"/*; do
    fd="${fd##*/}"
    if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-"; fi
done

port="${HUB_PG_PORT:-54329}"
dir="${HUB_PG_DIR:-/tmp/hub-postgres-$port}"
role="hub"
password="hub-test-password"
database="hub_test"
log() { printf 'postgres.sh: %s\n' "$*" >&2; }

# The newest installed server (a directory with initdb); empty when none is installed. Never fails under pipefail.
find_bin() {
    local found
    found="$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -n 1 || true)"
    [ -n "$found" ] && dirname "$found"
    return 0
}
bin="$(find_bin)"
if [ -z "$bin" ] || [ ! -x "$bin/initdb" ]; then
    log "installing PostgreSQL from Debian"
    if [ "$(id -u)" -ne 0 ]; then log "PostgreSQL is not installed and this is not root: apt-get install postgresql"; exit 1; fi
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
    bin="$(find_bin)"
fi

if [ "$(id -u)" -eq 0 ]; then
    owner="postgres"
    as_owner() { runuser -u postgres -- "$@"; }
else
    owner="$(id -un)"
    as_owner() { "$@"; }
fi

if [ "${1:-}" = "stop" ]; then
    if [ -f "$dir/data/postmaster.pid" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -w -t 60 stop -m fast >/dev/null; fi
    exit 0
fi

if [ -L "$dir" ] || { [ -e "$dir" ] && [ "$(stat -c %U "$dir")" != "$owner" ] && [ "$(stat -c %U "$dir")" != "$(id -un)" ]; }; then
    log "$dir is a symlink or belongs to someone else; set HUB_PG_DIR to a private directory"
    exit 1
fi
mkdir -p "$dir/sock"
chown -R "$owner" "$dir"
chmod 700 "$dir"
data="$dir/data"

if [ ! -f "$data/PG_VERSION" ]; then
    log "initialising a cluster in $data"
    pwfile="$dir/pwfile"
    printf '%s\n' "$password" > "$pwfile"
    chown "$owner" "$pwfile"
    as_owner "$bin/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --locale=C.UTF-8 >/dev/null
    rm -f "$pwfile"
fi

# A server killed with -9 leaves postmaster.pid behind (and here, a zombie that `pg_ctl status` believes alive).
if [ -f "$data/postmaster.pid" ]; then
    pid="$(head -n 1 "$data/postmaster.pid")"
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    command="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
    # Stale when the process is gone, a zombie, or the pid now belongs to something that is not PostgreSQL.
    if [ -z "$state" ] || [ "$state" = "Z" ] || [ "${command#postgres}" = "$command" ]; then
        log "removing stale postmaster.pid (pid $pid)"
        rm -f "$data/postmaster.pid"
    fi
fi

# HUB_PG_SSL=1: TLS with a self-signed certificate made here (for tests of certificate verification).
ssl_options=""
if [ "${HUB_PG_SSL:-0}" = "1" ]; then
    if [ ! -f "$dir/server.crt" ]; then
        openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=hub-test-postgres" \
            -keyout "$dir/server.key" -out "$dir/server.crt" 2>/dev/null
        chown "$owner" "$dir/server.key" "$dir/server.crt"
        chmod 600 "$dir/server.key"
    fi
    ssl_options="-c ssl=on -c ssl_cert_file=$dir/server.crt -c ssl_key_file=$dir/server.key"
fi

if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    log "starting PostgreSQL on 127.0.0.1:$port"
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 start -o \
        "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/sock -c fsync=off \
         -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c TimeZone=UTC $ssl_options" >/dev/null
fi
for _ in $(seq 1 60); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" && break
    sleep 0.5
done
"$bin/pg_isready" -q -h 127.0.0.1 -p "$port" || { log "PostgreSQL did not become ready; see $dir/server.log"; exit 1; }

psql_admin() { as_owner "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$dir/sock" -p "$port" -U postgres -d postgres "$@"; }
psql_admin -c "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$role') THEN CREATE ROLE $role LOGIN PASSWORD '$password'; END IF; END \$\$;"
# Tests that run whole processes against PostgreSQL (workers, crash tests) make databases of their own.
psql_admin -c "ALTER ROLE $role CREATEDB"
if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$database'")" ]; then
    psql_admin -c "CREATE DATABASE $database OWNER $role"
fi

echo "postgres://$role:$password@127.0.0.1:$port/$database?sslmode=disable"
