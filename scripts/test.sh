#!/usr/bin/env bash
# make test: the same preparation as `make run`, against the test database and Redis database.
# The suite makes its own database per run (from TEST_DATABASE_URL) and drops it at the end.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
export TEST_DATABASE_URL=${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/jwt_refresh_test}
export TEST_REDIS_URL=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}
"$ROOT/scripts/services.sh" "$TEST_DATABASE_URL" "$TEST_REDIS_URL"
# The browser tests (tests/browser) drive the system's Chromium; without one they are left
# out, saying so, unless REQUIRE_BROWSER=1 (CI), where that is a failure.
CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
browser=()
if [ -z "$CHROMIUM" ]; then
    if [ "${REQUIRE_BROWSER:-0}" = 1 ]; then
        echo "make test: REQUIRE_BROWSER=1 but no Chromium found (apt-get install -y chromium)" >&2
        exit 1
    fi
    echo "make test: browser tests left out: no Chromium (apt-get install -y chromium, or set CHROMIUM=/path)"
    browser=(--ignore=tests/browser)
else
    export CHROMIUM
fi
exec "$PY" -m pytest "${browser[@]}" "$@"
