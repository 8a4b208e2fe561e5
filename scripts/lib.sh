# Shared by the scripts. `.env` is read by app/config.py alone (environment first, then .env).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY="$ROOT/.venv/bin/python"

# Export what `.env` sets and the environment does not, by the app's own rules.
load_env() {
    local exports
    exports=$(cd "$ROOT" && "$PY" -m app.config --exports "${1:-$ROOT/.env}")
    eval "$exports"
}

say() { printf '%s\n' "$*" >&2; }
