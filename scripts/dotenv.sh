#!/usr/bin/env bash
# Write .env from .env.example with a random JWT_SECRET, unless .env exists already.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
if [[ -f .env ]]; then exit 0; fi
secret=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(48))')
sed "s|^JWT_SECRET=.*|JWT_SECRET=$secret|" .env.example > .env
chmod 600 .env
say "wrote .env with a random JWT_SECRET"
