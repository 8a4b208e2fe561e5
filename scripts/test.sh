#!/usr/bin/env bash
# make test: the same preparation as `make run`, against the test database and Redis database.
# The suite makes its own database per run (from TEST_DATABASE_URL) and drops it at the end.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/jwt_refresh_test}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
"$ROOT/scripts/services.sh" "$TEST_DATABASE_URL" "$TEST_REDIS_URL"
exec "$PY" -m pytest "$@"
