"""What the blueprints share: the caller's client info, token answers, path ids, and the
helpers that describe routes in the OpenAPI document."""

from __future__ import annotations

import json
import uuid
from dataclasses import fields
from datetime import datetime
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from sanic import HTTPResponse
from sanic.response import json as json_response
from sanic_ext.extensions.openapi.definitions import Parameter, Response

from app.accounts.responses import TokenResponse
from app.db import Database
from app.errors import ERROR_SCHEMA, NotFound
from app.pagination import DEFAULT_LIMIT, MAX_LIMIT, Page, split
from app.stores import events

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def path_id(raw: str, missing: str) -> str:
    """A UUID from the path; anything else names nothing, so it is a 404 `missing`."""
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound(missing) from None


def token_answer(tokens: TokenResponse) -> HTTPResponse:
    return json_response(tokens.as_json(), headers=NO_STORE)


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# -- the OpenAPI document ------------------------------------------------------------------


def object_schema(required: list[str], **properties: dict[str, Any]) -> dict[str, Any]:
    """A JSON Schema object for the OpenAPI document."""
    return {"type": "object", "required": required, "properties": properties}


_JSON_TYPES = {str: "string", int: "integer", bool: "boolean"}


def dataclass_schema(cls: type[Any]) -> dict[str, Any]:
    """The JSON Schema of a dataclass answer, typed from its hints: every field required but
    those that may be None (left out of the answer then)."""
    hints = get_type_hints(cls)
    properties: dict[str, dict[str, Any]] = {}
    required: list[str] = []
    for field in fields(cls):
        hint = hints[field.name]
        if get_origin(hint) in (Union, UnionType) and type(None) in get_args(hint):
            (hint,) = (arg for arg in get_args(hint) if arg is not type(None))
        else:
            required.append(field.name)
        if get_origin(hint) is Literal:
            values = list(get_args(hint))
            properties[field.name] = {"type": _JSON_TYPES[type(values[0])], "enum": values}
        else:
            properties[field.name] = {"type": _JSON_TYPES[hint]}
    return object_schema(required, **properties)


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


# -- pages and the audit trail ---------------------------------------------------------------

PAGE_PARAMETERS: list[dict[str, Any] | Parameter | str] = [
    {
        "name": "limit",
        "schema": int,
        "location": "query",
        "description": f"How many items at most: 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    },
    {
        "name": "cursor",
        "schema": str,
        "location": "query",
        "description": "The `next_cursor` of the page before (opaque)",
    },
]


def paged(name: str, item: dict[str, Any]) -> dict[str, Any]:
    """The schema of a page: `{name: [item, ...], "next_cursor": ...}`."""
    properties: dict[str, dict[str, Any]] = {
        name: {"type": "array", "items": item},
        "next_cursor": {
            "type": "string",
            "nullable": True,
            "description": "The next page's `cursor`; null on the last page",
        },
    }
    return object_schema([name, "next_cursor"], **properties)


EVENT = object_schema(
    ["id", "type", "at", "session_id", "ip", "user_agent", "request_id", "actor", "detail"],
    id={"type": "string"},
    type={"type": "string", "example": "login"},
    at={"type": "string", "format": "date-time"},
    session_id={"type": "string", "nullable": True},
    ip={"type": "string", "nullable": True},
    user_agent={"type": "string", "nullable": True},
    request_id={"type": "string", "nullable": True},
    actor={"type": "string", "nullable": True, "description": "The administrator who acted"},
    detail={"type": "object"},
)


async def event_page(db: Database, user_id: str, page: Page) -> dict[str, Any]:
    """A page of a user's audit trail, as answered."""
    rows = await events.page(db, user_id, limit=page.limit + 1, after=page.after)
    rows, cursor = split(rows, page, at="at")
    return {
        "events": [
            {
                "id": str(row["id"]),
                "type": row["type"],
                "at": iso(row["at"]),
                "session_id": str(row["session_id"]) if row["session_id"] else None,
                "ip": row["ip"],
                "user_agent": row["user_agent"],
                "request_id": row["request_id"],
                "actor": row["actor"],
                "detail": json.loads(row["detail"]),
            }
            for row in rows
        ],
        "next_cursor": cursor,
    }
