"""What the blueprints share: the caller's client info, token answers, path ids, and the
helpers that describe routes in the OpenAPI document."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import fields
from datetime import datetime
from typing import Any, Literal, get_args, get_origin, get_type_hints

from sanic import HTTPResponse, Request
from sanic.response import json
from sanic_ext.extensions.openapi.definitions import Response

from app.accounts.responses import TokenResponse
from app.accounts.sessions import ClientInfo
from app.errors import ERROR_SCHEMA, NotFound

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def client_info(request: Request) -> ClientInfo:
    """Injected as `client: ClientInfo`: the caller's user agent and address."""
    agent = request.headers.get("user-agent")
    if agent:
        # Sanic decodes header bytes with surrogateescape: store what can be stored.
        agent = agent[:512].encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return ClientInfo(user_agent=agent or None, ip=_address(request.remote_addr or request.ip))


def _address(raw: str | None) -> str | None:
    """The client's address, if it is one (a forwarding header may carry anything)."""
    try:
        return str(ipaddress.ip_address((raw or "").strip("[]")))
    except ValueError:
        return None


def path_id(raw: str, missing: str) -> str:
    """A UUID from the path; anything else names nothing, so it is a 404 `missing`."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(missing) from None


def token_answer(tokens: TokenResponse) -> HTTPResponse:
    return json(tokens.as_json(), headers=NO_STORE)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- the OpenAPI document ------------------------------------------------------------------


def object_schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema object for the OpenAPI document."""
    return {"type": "object", "required": required, "properties": properties}


_JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}


def dataclass_schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON Schema of a dataclass answer: every field required, typed from its hints."""
    hints = get_type_hints(cls)
    properties: dict[str, dict[str, Any]] = {}
    for field in fields(cls):
        hint = hints[field.name]
        if get_origin(hint) is Literal:
            values = list(get_args(hint))
            properties[field.name] = {"type": _JSON_TYPES[type(values[0])], "enum": values}
        else:
            properties[field.name] = {"type": _JSON_TYPES[hint]}
    return object_schema([field.name for field in fields(cls)], **properties)


def json_body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"application/json": schema}


def answers(*pairs: tuple[int, dict[str, Any] | None, str]) -> list[Response]:
    """OpenAPI responses: (status, JSON schema or None for no body, description); a 400 and
    a 503 in the error shape are added, since every route that reads input or touches a
    dependency may give them."""
    statuses = {status for status, _, _ in pairs}
    extra = [(code, ERROR_SCHEMA, text) for code, text in _COMMON.items() if code not in statuses]
    return [
        Response(json_body(schema) if schema else {}, status=status, description=text)
        for status, schema, text in [*pairs, *extra]
    ]


_COMMON = {400: "Malformed request", 503: "PostgreSQL or Redis unavailable"}

TOKEN_RESPONSE = dataclass_schema(TokenResponse)
