#!/usr/bin/env bash
# Stop the project-local PostgreSQL and Redis servers that scripts/services.sh started.
source "$(dirname "$0")/lib.sh"
shopt -s nullglob
for data in "$ROOT"/.local/postgres-*; do
    [[ -f $data/postmaster.pid ]] || continue
    bin=$(dirname "$(command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl | tail -1)")
    if [[ $EUID -eq 0 ]]; then runuser -u postgres -- "$bin/pg_ctl" -D "$data" -m fast stop || true
    else "$bin/pg_ctl" -D "$data" -m fast stop || true; fi
done
for pidfile in "$ROOT"/.local/redis-*/redis.pid; do
    kill "$(cat "$pidfile")" 2>/dev/null || true
done
