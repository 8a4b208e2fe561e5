#!/usr/bin/env bash
# Stop the project-local PostgreSQL and Redis servers that scripts/services.sh started.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
# A server `make run` started (scripts/run.sh wrote its pid): stopped as Ctrl-C would.
if [[ -f .local/run.pid ]]; then
  pid=$(<.local/run.pid)
  if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "sanic app.main"; then
    echo "stopping the server of make run (pid $pid)"
    kill -INT "$pid" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    pkill -KILL -P "$pid" 2>/dev/null; kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f .local/run.pid
fi
# devtools needs only the standard library here: this works after `make clean` removed .venv too
if [[ -x $PY ]]; then exec "$PY" -m devtools.services --stop; fi
exec python3 -m devtools.services --stop
