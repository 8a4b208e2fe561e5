"""Scopes: their grammar, what new accounts get, and what a request may be granted. Pure."""

from __future__ import annotations

import re

from app.errors import InvalidRequest, InvalidScope

DEFAULT_SCOPE = "notes:read notes:write"
ADMIN_SCOPE = "admin"
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 §3.3


def check_syntax(scope: str) -> None:
    """A requested scope: space-separated scope tokens."""
    if not all(SCOPE_TOKEN.fullmatch(part) for part in scope.split()):
        raise InvalidRequest("The scope must be space-separated scope tokens.")


def resolve_scope(requested: str | None, granted: str) -> str:
    """The scope to grant: all of `granted` by default, or a subset of it, never more."""
    allowed = granted.split()
    if requested is None or not requested.strip():
        return " ".join(allowed)
    wanted = requested.split()
    if any(scope not in allowed for scope in wanted):
        raise InvalidScope("The requested scope exceeds what this account may have.")
    return " ".join(scope for scope in allowed if scope in wanted)
