#!/usr/bin/env bash
# Write .env from .env.example with a random JWT_SECRET, unless .env exists already. The file
# is created 0600 (never readable by others, not even for a moment) and the secret is made
# inside Python, never put on a command line where `ps` would show it.
source "$(dirname "$0")/lib.sh"
cd "$ROOT"
if [[ -f .env ]]; then exit 0; fi
umask 077
"$PY" - <<'PYTHON'
import os
import re
import secrets
from pathlib import Path

example = Path(".env.example").read_text(encoding="utf-8")
text = re.sub(r"(?m)^JWT_SECRET=.*$", "JWT_SECRET=" + secrets.token_urlsafe(48), example)
fd = os.open(".env", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
with os.fdopen(fd, "w", encoding="utf-8") as env:
    env.write(text)
PYTHON
say "wrote .env with a random JWT_SECRET"
