"""Routes under /api/admin (scope `admin`): disable and enable accounts."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty
from sanic_ext.extensions.openapi import openapi

from app.accounts.admin import AccountAdmin
from app.bearer import requires
from app.blueprints.common import answers
from app.errors import ERROR_SCHEMA as ERROR

bp = Blueprint("admin", url_prefix="/api/admin")


@bp.post("/users/<username:str>/disable")
@openapi.definition(
    summary="Disable an account: no login or refresh, its live access tokens refused at once",
    response=answers((204, None, "Disabled"), (404, ERROR, "No such user")),
)
@requires("admin")
async def disable(request: Request, username: str, admin: AccountAdmin) -> HTTPResponse:
    await admin.set_disabled(username, True)
    return empty()


@bp.post("/users/<username:str>/enable")
@openapi.definition(
    summary="Enable an account again (its earlier sessions stay ended)",
    response=answers((204, None, "Enabled"), (404, ERROR, "No such user")),
)
@requires("admin")
async def enable(request: Request, username: str, admin: AccountAdmin) -> HTTPResponse:
    await admin.set_disabled(username, False)
    return empty()
