"""Scopes: their grammar, what new accounts get, and what a request may be granted. Pure."""

from __future__ import annotations

import re

from app.errors import InvalidRequest, InvalidScope

DEFAULT_SCOPE = "notes:read notes:write"
ADMIN_SCOPE = "admin"
INTROSPECT_SCOPE = "introspect"  # a service account's: may call POST /auth/introspect
SCOPES = (*DEFAULT_SCOPE.split(), ADMIN_SCOPE, INTROSPECT_SCOPE)
# RFC 6749 §3.3: scope tokens separated by spaces (U+0020 only: no tabs, no other white
# space, which a database or another parser might split differently)
SCOPE = re.compile(r" *([\x21\x23-\x5b\x5d-\x7e]+ *)*")


def check_syntax(scope: str) -> None:
    """A requested scope: scope tokens separated by spaces, or blank (none asked for)."""
    if not SCOPE.fullmatch(scope):
        raise InvalidRequest("The scope must be scope tokens separated by spaces.")


def resolve_scope(requested: str | None, granted: str) -> str:
    """The scope to grant: all of `granted` by default, or a subset of it, never more."""
    allowed = granted.split()
    if requested is None or not requested.strip():
        return " ".join(allowed)
    wanted = requested.split()
    if any(scope not in allowed for scope in wanted):
        raise InvalidScope("The requested scope exceeds what this account may have.")
    return " ".join(scope for scope in allowed if scope in wanted)
