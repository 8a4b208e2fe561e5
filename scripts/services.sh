#!/usr/bin/env bash
# Make sure PostgreSQL and Redis answer at the given URLs; when nothing answers on a loopback
# address, start project-local servers (data in .local/) or say exactly what to install.
# usage: scripts/services.sh POSTGRES_URL REDIS_URL      (the logic: devtools/services.py)
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
exec "$PY" -m devtools.services "$@"
