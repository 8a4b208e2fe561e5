"""Small helpers shared by the blueprints: services, client info, token answers, doc schemas."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sanic import HTTPResponse, Request
from sanic.response import json
from sanic_ext.extensions.openapi.definitions import Response

from app.auth import AuthService, Client
from app.errors import ERROR_SCHEMA, NotFound
from app.tokens import AccessClaims

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def service(request: Request) -> AuthService:
    auth: AuthService = request.app.ctx.auth
    return auth


def caller(request: Request) -> AccessClaims:
    """The verified claims the middleware put there (only on `@requires` routes)."""
    claims: AccessClaims = request.ctx.auth
    return claims


def path_id(raw: str, missing: str) -> str:
    """A UUID from the path; anything else names nothing, so it is a 404 `missing`."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(missing) from None


def client_of(request: Request) -> Client:
    agent = request.headers.get("user-agent")
    if agent:
        # Sanic decodes header bytes with surrogateescape: store what can be stored.
        agent = agent[:512].encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return Client(user_agent=agent or None, ip=request.remote_addr or request.ip)


def token_answer(body: dict[str, Any]) -> HTTPResponse:
    return json(body, headers=NO_STORE)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def object_schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema object for the OpenAPI document."""
    return {"type": "object", "required": required, "properties": properties}


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


TOKEN_RESPONSE = object_schema(
    ["access_token", "token_type", "expires_in", "refresh_token", "scope"],
    access_token={"type": "string"},
    token_type={"type": "string", "enum": ["Bearer"]},
    expires_in={"type": "integer"},
    refresh_token={"type": "string"},
    refresh_expires_in={"type": "integer"},
    scope={"type": "string"},
    account_id={"type": "string"},
    session_id={"type": "string"},
)
