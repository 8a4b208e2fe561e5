"""POST /auth/introspect (RFC 7662), for services holding the `introspect` scope."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json
from sanic_ext.extensions.openapi import openapi

from app.accounts.introspection import Introspection
from app.bearer import requires
from app.blueprints.common import NO_STORE, answers, object_schema
from app.db import Database
from app.errors import ERROR_SCHEMA as ERROR
from app.inputs import read_params, required_string, string
from app.scopes import INTROSPECT_SCOPE
from app.tokens import MAX_TOKEN_LENGTH

bp = Blueprint("introspection", url_prefix="/auth")

_PARAMS = object_schema(
    ["token"],
    token={"type": "string", "minLength": 1},
    token_type_hint={"type": "string", "enum": ["access_token", "refresh_token"]},
)
_ANSWER = object_schema(
    ["active"],
    active={"type": "boolean"},
    token_type={"type": "string", "enum": ["Bearer"]},
    token_use={"type": "string", "enum": ["access_token", "refresh_token"]},
    scope={"type": "string"},
    username={"type": "string"},
    sub={"type": "string"},
    iss={"type": "string"},
    aud={"type": "string"},
    iat={"type": "integer"},
    exp={"type": "integer"},
    jti={"type": "string"},
    sid={"type": "string"},
)


@bp.post("/introspect")
@openapi.definition(
    summary="RFC 7662 token introspection: is this token usable right now (revocation included)",
    body={"application/x-www-form-urlencoded": _PARAMS, "application/json": _PARAMS},
    response=answers((200, _ANSWER, "The token's state"), (400, ERROR, "No token parameter")),
)
@requires(INTROSPECT_SCOPE)
async def introspect(request: Request, db: Database) -> HTTPResponse:
    body = read_params(request)
    token = required_string(body, "token", max_length=64 * 1024)
    hint = string(body, "token_type_hint", required=False, max_length=64)
    ctx = request.app.ctx
    if len(token) > MAX_TOKEN_LENGTH:
        return json({"active": False}, headers=NO_STORE)
    flow = Introspection(ctx.settings, ctx.tokens, ctx.bearer, db)
    return json(await flow.introspect(token, hint), headers=NO_STORE)
