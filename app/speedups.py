"""One fix to Sanic's hot path, with the same result: every response header value is passed
through `str.translate` to drop CR, LF and NUL (header injection), which costs about 40 ns a
character, a microsecond or more per response. Values without any of the three, nearly all
of them, are returned as they are after three substring searches; the rest are translated
exactly as Sanic does. Applied only when Sanic's sanitizer is the one this was written for.
"""

from __future__ import annotations

from sanic.response import types

_DROPPED = "\r\n\x00"


def sanitize_header_value(value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        return value.translate(types.HEADER_TRANSLATION_TABLE)
    return value


def apply() -> bool:
    """Install the fast sanitizer; False (and nothing changed) on a Sanic that differs."""
    table = getattr(types, "HEADER_TRANSLATION_TABLE", None)
    current = getattr(types.BaseHTTPResponse, "_sanitize_header_value", None)
    if table != str.maketrans("", "", _DROPPED) or current is None:
        return False
    types.BaseHTTPResponse._sanitize_header_value = staticmethod(sanitize_header_value)  # type: ignore[method-assign]
    return True
