"""Routes under /api/admin (scope `admin`): disable and enable accounts."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty
from sanic_ext.extensions.openapi import openapi

from app.blueprints.auth import USERNAME
from app.blueprints.common import answers, service
from app.errors import ERROR_SCHEMA as ERROR
from app.errors import NotFound
from app.middleware import requires

bp = Blueprint("admin", url_prefix="/api/admin")


def _username(raw: str) -> str:
    if not USERNAME.fullmatch(raw):
        raise NotFound("No such user.")  # no account can have this name
    return raw


@bp.post("/users/<username:str>/disable")
@openapi.definition(
    summary="Disable an account: no login or refresh, its live access tokens refused at once",
    response=answers((204, None, "Disabled"), (404, ERROR, "No such user")),
)
@requires("admin")
async def disable(request: Request, username: str) -> HTTPResponse:
    await service(request).set_disabled(_username(username), True)
    return empty()


@bp.post("/users/<username:str>/enable")
@openapi.definition(
    summary="Enable an account again (its earlier sessions stay ended)",
    response=answers((204, None, "Enabled"), (404, ERROR, "No such user")),
)
@requires("admin")
async def enable(request: Request, username: str) -> HTTPResponse:
    await service(request).set_disabled(_username(username), False)
    return empty()
