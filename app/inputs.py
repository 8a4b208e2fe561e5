"""The input readers: request bodies into plain, validated values; every failure is a
`400 invalid_request`. Pure apart from reading the request object."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from sanic import Request

from app.errors import InvalidRequest

FORM = "application/x-www-form-urlencoded"


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def read_json(request: Request) -> dict[str, Any]:
    """The body as a JSON object, whatever the Content-Type says (curl -d sends a form type)."""
    if not request.body:
        raise InvalidRequest("The request body is empty; a JSON object is expected.")
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("The body is not a valid JSON object.") from None
    if not isinstance(body, dict):
        raise InvalidRequest("The body must be a JSON object.")
    return body


def read_params(request: Request) -> dict[str, Any]:
    """A form (RFC 6749 §4.1.3 style) or JSON object body; form parameters may not repeat."""
    if _content_type(request) != FORM or request.body.lstrip().startswith(b"{"):
        return read_json(request)
    try:
        pairs = parse_qsl(
            request.body.decode("utf-8"), keep_blank_values=True, strict_parsing=False
        )
    except UnicodeDecodeError:
        raise InvalidRequest("The form body is not valid UTF-8.") from None
    params: dict[str, Any] = {}
    for key, value in pairs:
        if key in params:
            raise InvalidRequest(f"The parameter '{key}' is repeated.")
        params[key] = value
    return params


def string(
    body: dict[str, Any],
    name: str,
    *,
    required: bool = True,
    max_length: int = 10_000,
    allow_empty: bool = False,
) -> str | None:
    """A string field, or None when optional and absent (or JSON null)."""
    value = body.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"The field '{name}' is required.")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"The field '{name}' must be a string.")
    if not value and not allow_empty and required:
        raise InvalidRequest(f"The field '{name}' must not be empty.")
    if len(value) > max_length:
        raise InvalidRequest(f"The field '{name}' is longer than {max_length} characters.")
    if not is_storable(value):
        raise InvalidRequest(f"The field '{name}' holds a NUL or an unpaired surrogate.")
    return value


def is_storable(text: str) -> bool:
    """Text that PostgreSQL, Redis and argon2 take: valid UTF-8 (no lone surrogates), no NUL."""
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def required_string(body: dict[str, Any], name: str, *, max_length: int = 10_000) -> str:
    value = string(body, name, max_length=max_length)
    assert value is not None
    return value
