#!/usr/bin/env bash
# make bench: PostgreSQL and Redis as for `make run`, then bench/run.py (wrk against a real server)
# and bench/revocations.py (the revocation state's cost as it grows).
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
if ! command -v wrk >/dev/null; then
    say "wrk is not installed: apt-get install wrk (Debian/Ubuntu) or brew install wrk (macOS)"
    exit 1
fi
export BENCH_DATABASE_URL=${BENCH_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/jwt_refresh_bench}
export BENCH_REDIS_URL=${BENCH_REDIS_URL:-redis://127.0.0.1:6379/14}
"$ROOT/scripts/services.sh" "$BENCH_DATABASE_URL" "$BENCH_REDIS_URL"
timeout 1200 "$PY" -m bench.run "$@" || exit $?
# what the revocation state costs as it grows: on a throwaway Redis of its own
exec timeout 600 "$PY" -m bench.revocations
