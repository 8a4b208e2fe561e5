# Shared by the scripts. `.env` is read by app/config.py alone (environment first, then .env).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY="$ROOT/.venv/bin/python"

# Export what `.env` sets and the environment does not, by the app's own rules; a name this
# shell already has (ROOT, PY, UID, ...) is left alone even if it is not exported.
load_env() {
    local line key exports
    exports=$("$PY" -m app.config --exports "${1:-$ROOT/.env}")
    while IFS= read -r line; do
        [[ -n $line ]] || continue
        key=${line#export }; key=${key%%=*}
        [[ -n ${!key+x} ]] || eval "$line"
    done <<< "$exports"
}

say() { printf '%s\n' "$*" >&2; }
