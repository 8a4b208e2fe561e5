#!/usr/bin/env bash
# Stop the project-local PostgreSQL and Redis servers that scripts/services.sh started.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# devtools needs only the standard library here: this works after `make clean` removed .venv too
if [[ -x $PY ]]; then exec "$PY" -m devtools.services --stop; fi
exec python3 -m devtools.services --stop
