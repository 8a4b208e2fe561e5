# Shared by the scripts: load settings the way the app does (environment first, then .env).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY="$ROOT/.venv/bin/python"

load_env() {
    local file=${1:-$ROOT/.env} key value
    [[ -f $file ]] || return 0
    while IFS= read -r line || [[ -n $line ]]; do
        line=${line#"${line%%[![:space:]]*}"}
        [[ -z $line || $line == \#* || $line != *=* ]] && continue
        line=${line#export }
        key=${line%%=*}; value=${line#*=}
        value=${value%\"}; value=${value#\"}; value=${value%\'}; value=${value#\'}
        [[ $key =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || continue
        [[ -n ${!key+x} ]] || export "$key=$value"
    done < "$file"
}

say() { printf '%s\n' "$*" >&2; }
