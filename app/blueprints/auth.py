"""Routes under /auth: accounts, tokens (login, refresh, the OAuth 2.0 token endpoint, RFC
7009 revocation) and the caller's sessions."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import empty, json
from sanic_ext.extensions.openapi import openapi

from app import policy, scopes
from app.accounts.login import Login
from app.accounts.password_change import PasswordChange
from app.accounts.refresh import Refresh
from app.accounts.registration import Registration
from app.accounts.sessions import Sessions
from app.bearer import caller, requires
from app.blueprints.common import (
    EVENT,
    PAGE_PARAMETERS,
    TOKEN_RESPONSE,
    answers,
    event_page,
    iso,
    json_body,
    object_schema,
    paged,
    path_id,
)
from app.cookies import CSRF_HEADER, Cookies
from app.db import Database
from app.errors import ERROR_SCHEMA as ERROR
from app.errors import InvalidGrant, UnsupportedGrantType
from app.inputs import read_json, read_params, required_string, string
from app.origin import ClientInfo
from app.pagination import bigint, page_of, split
from app.stores import sessions as session_rows
from app.tokens import MAX_TOKEN_LENGTH

bp = Blueprint("auth", url_prefix="/auth")

_NEW_ACCOUNT = object_schema(
    ["username", "password"],
    username={"type": "string", "pattern": policy.USERNAME_PATTERN},
    password={"type": "string", "minLength": policy.MIN_PASSWORD, "maxLength": policy.MAX_PASSWORD},
)
_DELIVERY = {
    "type": "string",
    "enum": ["body", "cookie"],
    "description": "cookie: the refresh token in an HttpOnly cookie (browser apps), not here",
}
_CREDENTIALS = object_schema(
    ["username", "password"],
    username={"type": "string", "minLength": 1, "maxLength": policy.MAX_USERNAME_INPUT},
    password={"type": "string", "minLength": 1, "maxLength": policy.MAX_PASSWORD},
    scope={"type": "string", "example": "notes:read"},
    token_delivery=_DELIVERY,
)
_ACCOUNT = object_schema(
    ["id", "username", "created_at"],
    id={"type": "string"},
    username={"type": "string"},
    created_at={"type": "string", "format": "date-time"},
)
_REFRESH = object_schema(
    [],
    refresh_token={
        "type": "string",
        "minLength": 1,
        "description": "Required unless the refresh_token cookie is sent (with X-CSRF-Token)",
    },
    token_delivery=_DELIVERY,
)
_SESSION = object_schema(
    ["id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"],
    id={"type": "string"},
    created_at={"type": "string", "format": "date-time"},
    last_used_at={"type": "string", "format": "date-time"},
    expires_at={"type": "string", "format": "date-time"},
    user_agent={"type": "string", "nullable": True},
    ip={"type": "string", "nullable": True},
    current={"type": "boolean"},
)


def _username(body: dict[str, Any]) -> str:
    return required_string(body, "username", max_length=policy.MAX_USERNAME_INPUT)


def _password(body: dict[str, Any], name: str = "password") -> str:
    return required_string(body, name, max_length=policy.MAX_PASSWORD)


def _optional_params(request: Request) -> dict[str, Any]:
    """A form or JSON body, or none at all (a browser's cookie refresh may send nothing)."""
    return read_params(request) if request.body.strip() else {}


def _scope(body: dict[str, Any]) -> str | None:
    scope = string(body, "scope", required=False, max_length=1000)
    if scope is not None:
        scopes.check_syntax(scope)
    return scope


# -- accounts and tokens -----------------------------------------------------------------


@bp.post("/register")
@openapi.definition(
    summary="Create an account",
    body=json_body(_NEW_ACCOUNT),
    response=answers(
        (201, _ACCOUNT, "Created"),
        (409, ERROR, "Taken"),
        (429, ERROR, "Too many registrations from this address (see Retry-After)"),
    ),
)
async def register(
    request: Request, registration: Registration, client: ClientInfo
) -> HTTPResponse:
    body = read_json(request)
    username, password = _username(body), _password(body)
    account = await registration.register(username, password, client.ip)
    return json(
        {"id": account.id, "username": account.username, "created_at": iso(account.created_at)},
        status=201,
    )


@bp.post("/login")
@openapi.definition(
    summary="Log in: start a session",
    body=json_body(_CREDENTIALS),
    response=answers(
        (200, TOKEN_RESPONSE, "Token response"),
        (401, ERROR, "Wrong username or password, or a disabled account"),
        (429, ERROR, "Too many failed attempts (see Retry-After)"),
    ),
)
async def login(
    request: Request, login_flow: Login, cookies: Cookies, client: ClientInfo
) -> HTTPResponse:
    body = read_json(request)
    username, password = _username(body), _password(body)
    to_cookie = cookies.delivery(request, body)
    tokens = await login_flow.login(username, password, _scope(body), client)
    return cookies.respond(tokens, to_cookie)


@bp.post("/refresh")
@openapi.definition(
    summary="Rotate a refresh token into a new token pair",
    body=json_body(_REFRESH),
    response=answers(
        (200, TOKEN_RESPONSE, "Token response"),
        (401, ERROR, "Expired, malformed, revoked, used, or not a refresh token"),
        (403, ERROR, f"csrf_failed: the refresh cookie without a matching {CSRF_HEADER}"),
    ),
)
async def refresh(
    request: Request, refresh_flow: Refresh, cookies: Cookies, client: ClientInfo
) -> HTTPResponse:
    body = _optional_params(request)
    to_cookie = cookies.delivery(request, body)
    token = string(body, "refresh_token", required=False, max_length=MAX_TOKEN_LENGTH)
    if token is None:
        return await cookies.refresh(request, body, refresh_flow, client)
    return cookies.respond(await refresh_flow.refresh(token, client), to_cookie)


@bp.post("/token")
@openapi.definition(
    summary="OAuth 2.0 token endpoint (RFC 6749): password and refresh_token grants",
    body={
        "application/x-www-form-urlencoded": object_schema(
            ["grant_type"],
            grant_type={"type": "string", "enum": ["password", "refresh_token"]},
            username={"type": "string"},
            password={"type": "string"},
            refresh_token={"type": "string"},
            scope={"type": "string"},
            token_delivery=_DELIVERY,
        )
    },
    response=answers(
        (200, TOKEN_RESPONSE, "Token response"),
        (400, ERROR, "RFC 6749 §5.2 error"),
        (429, ERROR, "Too many failed attempts (see Retry-After)"),
    ),
)
async def token(
    request: Request, login_flow: Login, refresh_flow: Refresh, cookies: Cookies, client: ClientInfo
) -> HTTPResponse:
    body = read_params(request)
    grant_type = required_string(body, "grant_type", max_length=64)
    to_cookie = cookies.delivery(request, body)
    try:
        if grant_type == "password":
            username, password = _username(body), _password(body)
            tokens = await login_flow.login(username, password, _scope(body), client)
        elif grant_type == "refresh_token":
            refresh_token = required_string(body, "refresh_token", max_length=MAX_TOKEN_LENGTH)
            tokens = await refresh_flow.refresh(refresh_token, client, _scope(body))
        else:
            raise UnsupportedGrantType(f"The grant type '{grant_type[:64]}' is not supported.")
    except InvalidGrant as error:
        raise error.as_oauth() from None
    return cookies.respond(tokens, to_cookie)


@bp.post("/revoke")
@openapi.definition(
    summary="RFC 7009 token revocation: ends the session the token belongs to",
    body={
        "application/x-www-form-urlencoded": object_schema(
            ["token"],
            token={"type": "string", "minLength": 1},
            token_type_hint={"type": "string", "example": "refresh_token"},
        )
    },
    response=answers(
        (200, None, "Revoked, or nothing to revoke"), (400, ERROR, "No token parameter")
    ),
)
async def revoke(request: Request, sessions: Sessions, client: ClientInfo) -> HTTPResponse:
    body = read_params(request)
    token = required_string(body, "token", max_length=64 * 1024)
    hint = string(body, "token_type_hint", required=False, max_length=64)
    # RFC 7009 §2.2: an invalid or unknown token is not an error; there is just nothing to do.
    if len(token) <= MAX_TOKEN_LENGTH:
        await sessions.revoke_token(token, hint, client)
    return empty(status=200)


# -- the caller's sessions (bearer) --------------------------------------------------------


@bp.post("/logout")
@openapi.definition(
    summary="End the caller's session: by its access token, a refresh token, or the cookie",
    body=json_body(
        object_schema(
            [], refresh_token={"type": "string", "description": "Without an access token"}
        )
    ),
    response=answers(
        (204, None, "Ended"),
        (401, ERROR, "No usable token"),
        (403, ERROR, f"csrf_failed: the refresh cookie without a matching {CSRF_HEADER}"),
    ),
)
@requires(optional=True)
async def logout(
    request: Request, sessions: Sessions, cookies: Cookies, client: ClientInfo
) -> HTTPResponse:
    claims = request.ctx.claims
    if claims is not None:
        await sessions.end([claims.sid], reason="logout", client=client)
        return cookies.after_logout(request, empty(), claims.sid)
    body = _optional_params(request)
    token = string(body, "refresh_token", required=False, max_length=MAX_TOKEN_LENGTH)
    if token is None:
        return await cookies.log_out(request, sessions, client)
    sid = await sessions.log_out_with(token, client)
    return cookies.after_logout(request, empty(), sid)


@bp.post("/logout-all")
@openapi.definition(
    summary="End every session of the caller", response=answers((204, None, "Ended"))
)
@requires()
async def logout_all(request: Request, sessions: Sessions, client: ClientInfo) -> HTTPResponse:
    await sessions.end_all(caller(request).sub, "logout_all", client=client)
    return empty()


@bp.post("/password")
@openapi.definition(
    summary="Change the password: every earlier session ends, a new one starts",
    body=json_body(
        object_schema(
            ["current_password", "new_password"],
            current_password={"type": "string", "minLength": 1, "maxLength": policy.MAX_PASSWORD},
            new_password={
                "type": "string",
                "minLength": policy.MIN_PASSWORD,
                "maxLength": policy.MAX_PASSWORD,
            },
            token_delivery=_DELIVERY,
        )
    ),
    response=answers(
        (200, TOKEN_RESPONSE, "Token response for a new session"),
        (400, ERROR, "The new password breaks the policy"),
        (403, ERROR, "The current password is wrong"),
        (429, ERROR, "Too many wrong passwords (see Retry-After)"),
    ),
)
@requires()
async def change_password(
    request: Request, password_change: PasswordChange, cookies: Cookies, client: ClientInfo
) -> HTTPResponse:
    body = read_json(request)
    current, new = _password(body, "current_password"), _password(body, "new_password")
    to_cookie = cookies.delivery(request, body)
    tokens = await password_change.change(caller(request), current, new, client)
    return cookies.respond(tokens, to_cookie)


@bp.get("/sessions")
@openapi.definition(
    summary="The caller's active sessions, newest first, a page at a time",
    parameter=PAGE_PARAMETERS,
    response=answers((200, paged("sessions", _SESSION), "A page of sessions")),
)
@requires()
async def list_sessions(request: Request, db: Database) -> HTTPResponse:
    claims = caller(request)
    page = page_of(request)
    rows = await session_rows.page_active(db, claims.sub, limit=page.limit + 1, after=page.after)
    rows, cursor = split(rows, page)
    return json(
        {
            "sessions": [
                {
                    "id": str(row["id"]),
                    "created_at": iso(row["created_at"]),
                    "last_used_at": iso(row["last_used_at"]),
                    "expires_at": iso(row["expires_at"]),
                    "user_agent": row["user_agent"],
                    "ip": row["ip"],
                    "current": str(row["id"]) == claims.sid,
                }
                for row in rows
            ],
            "next_cursor": cursor,
        }
    )


@bp.get("/events")
@openapi.definition(
    summary="The caller's security events (the audit trail), newest first, a page at a time",
    parameter=PAGE_PARAMETERS,
    response=answers((200, paged("events", EVENT), "A page of events")),
)
@requires()
async def list_events(request: Request, db: Database) -> HTTPResponse:
    return json(await event_page(db, caller(request).sub, page_of(request, bigint)))


@bp.delete("/sessions/<session_id:str>")
@openapi.definition(
    summary="End one of the caller's sessions",
    response=answers((204, None, "Ended"), (404, ERROR, "No such session of the caller")),
)
@requires()
async def end_session(
    request: Request, session_id: str, sessions: Sessions, cookies: Cookies, client: ClientInfo
) -> HTTPResponse:
    sid = path_id(session_id, "No such session.")
    await sessions.end_own(caller(request).sub, sid, client)
    return cookies.after_logout(request, empty(), sid)  # the cookies' own session: they go
