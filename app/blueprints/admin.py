"""Routes under /api/admin (scope `admin`): disable and enable accounts, read any user's audit
trail. Every action is recorded with the administrator who took it."""

from __future__ import annotations

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json
from sanic_ext.extensions.openapi import openapi

from app.accounts.admin import AccountAdmin
from app.bearer import caller, requires
from app.blueprints.common import EVENT, PAGE_PARAMETERS, answers, event_page, paged
from app.db import Database
from app.errors import ERROR_SCHEMA as ERROR
from app.origin import ClientInfo
from app.pagination import bigint, page_of

bp = Blueprint("admin", url_prefix="/api/admin")


@bp.post("/users/<username:str>/disable")
@openapi.definition(
    operation="disableUser",
    summary="Disable an account: no login or refresh, its live access tokens refused at once",
    response=answers((204, None, "Disabled"), (404, ERROR, "No such user")),
)
@requires("admin")
async def disable(
    request: Request, username: str, admin: AccountAdmin, client: ClientInfo
) -> HTTPResponse:
    await admin.set_disabled(username, True, actor_id=caller(request).sub, client=client)
    return empty()


@bp.post("/users/<username:str>/enable")
@openapi.definition(
    operation="enableUser",
    summary="Enable an account again (its earlier sessions stay ended)",
    response=answers((204, None, "Enabled"), (404, ERROR, "No such user")),
)
@requires("admin")
async def enable(
    request: Request, username: str, admin: AccountAdmin, client: ClientInfo
) -> HTTPResponse:
    await admin.set_disabled(username, False, actor_id=caller(request).sub, client=client)
    return empty()


@bp.get("/users/<username:str>/events")
@openapi.definition(
    operation="listUserEvents",
    summary="A user's security events (the audit trail), newest first, a page at a time",
    parameter=PAGE_PARAMETERS,
    response=answers(
        (200, paged("events", EVENT), "A page of events"), (404, ERROR, "No such user")
    ),
)
@requires("admin")
async def user_events(
    request: Request, username: str, admin: AccountAdmin, db: Database
) -> HTTPResponse:
    page = page_of(request, bigint)
    user_id = await admin.user_id(username)
    return json(await event_page(db, user_id, page))
