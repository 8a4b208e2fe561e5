#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer at the given URLs. When nothing answers on a loopback
# address, start project-local servers (data in .local/) from the installed binaries, or say
# exactly what to install.   usage: scripts/services.sh POSTGRES_URL REDIS_URL
source "$(dirname "$0")/lib.sh"
pg_url=$1 redis_url=$2
LOCAL="$ROOT/.local"

# host port of a URL
hostport() {
    "$PY" -c 'import sys; from urllib.parse import urlsplit; u = urlsplit(sys.argv[1]); print(u.hostname or "127.0.0.1", u.port or int(sys.argv[2]))' "$1" "$2"
}
answers() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }
is_loopback() { [[ $1 == 127.* || $1 == localhost || $1 == ::1 ]]; }

find_pg_bin() {
    local dir
    for dir in "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")" /usr/lib/postgresql/*/bin; do
        [[ -x $dir/pg_ctl && -x $dir/initdb ]] && { echo "$dir"; return 0; }
    done
    return 1
}

start_postgres() {
    local host=$1 port=$2 bin data="$LOCAL/postgres-$2" run_as=()
    if ! bin=$(find_pg_bin); then
        say "PostgreSQL does not answer on $host:$port and is not installed."
        say "Install it (Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql), or set DATABASE_URL to a running server."
        exit 1
    fi
    mkdir -p "$LOCAL"
    if [[ $EUID -eq 0 ]]; then  # PostgreSQL refuses to run as root
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
        mkdir -p "$data"; chown postgres "$data"; chmod 700 "$data"
        run_as=(runuser -u postgres --)
    fi
    if [[ ! -f $data/PG_VERSION ]]; then
        say "initialising a project-local PostgreSQL in $data"
        "${run_as[@]}" "$bin/initdb" -D "$data" -U postgres --auth=trust -E UTF8 >/dev/null
    fi
    say "starting a project-local PostgreSQL on $host:$port"
    "${run_as[@]}" "$bin/pg_ctl" -D "$data" -l "$data/server.log" -w -t 30 \
        -o "-p $port -c listen_addresses=$host -k $data" start >/dev/null
}

start_redis() {
    local host=$1 port=$2 data="$LOCAL/redis-$2"
    if ! command -v redis-server >/dev/null; then
        say "Redis does not answer on $host:$port and is not installed."
        say "Install it (Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis), or set REDIS_URL to a running server."
        exit 1
    fi
    mkdir -p "$data"
    say "starting a project-local Redis on $host:$port"
    redis-server --daemonize yes --bind "$host" --port "$port" --save "" --appendonly no \
        --dir "$data" --pidfile "$data/redis.pid" --logfile "$data/redis.log"
}

ensure() {
    local kind=$1 url=$2 default_port=$3 host port
    read -r host port < <(hostport "$url" "$default_port")
    answers "$host" "$port" && return 0
    if ! is_loopback "$host"; then
        say "$kind does not answer at $host:$port; check the URL or start it there."
        exit 1
    fi
    "start_$kind" "$host" "$port"
    for _ in $(seq 50); do answers "$host" "$port" && return 0; sleep 0.2; done
    say "$kind did not come up on $host:$port (logs in $LOCAL)"; exit 1
}

ensure postgres "$pg_url" 5432
ensure redis "$redis_url" 6379
