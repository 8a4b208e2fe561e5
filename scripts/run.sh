#!/usr/bin/env bash
# make run: .env, services, database, migrations, then serve on HOST:PORT with WORKERS workers.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
"$ROOT/scripts/dotenv.sh"
load_env
: "${DATABASE_URL:=postgresql://postgres@127.0.0.1:5432/jwt_refresh}" "${REDIS_URL:=redis://127.0.0.1:6379/0}"
"$ROOT/scripts/services.sh" "$DATABASE_URL" "$REDIS_URL"
"$PY" -m app.cli create-db >/dev/null
"$PY" -m app.cli migrate
# `make clean` stops this server: its pid (the same after exec) in .local/run.pid
mkdir -p "$ROOT/.local" && echo $$ >"$ROOT/.local/run.pid"
exec "$ROOT/.venv/bin/sanic" app.main --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --workers "${WORKERS:-1}"
