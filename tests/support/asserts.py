"""What a client sees, asserted: the contract's error and token answers, and the common steps
of the route tests (is this session alive, list my sessions, make an admin)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import jwt

from app import passwords
from app.stores import users
from tests.support import ADMIN_PASSWORD, DEFAULT_SCOPE, TOKEN_FIELDS, Api


def content_type(response: Any) -> str:
    return str(response.headers.get("content-type", "")).split(";", 1)[0].strip().lower()


async def register(api: Api, username: Any, password: Any) -> Any:
    """POST /auth/register with any values: the raw answer."""
    return await api.request(
        "POST", "/auth/register", json={"username": username, "password": password}
    )


def body_of(response: Any) -> Any:
    return json.loads(response.text) if response.text else None


def assert_error(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    """The contract's error answer: the status, a JSON body of exactly error/description,
    and never a token in it."""
    assert response.status == status, response.text
    assert content_type(response) == "application/json", response.headers
    body: dict[str, Any] = body_of(response)
    assert set(body) == {"error", "error_description"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["error_description"], str) and body["error_description"]
    if error is not None:
        assert body["error"] == error, body
    return body


def assert_token_response(response: Any) -> dict[str, Any]:
    """The contract's token response: every field, and never cached."""
    assert response.status == 200, response.text
    assert content_type(response) == "application/json", response.headers
    body: dict[str, Any] = response.json
    assert set(body) == TOKEN_FIELDS, body
    assert body["token_type"] == "Bearer"
    assert body["access_token"] != body["refresh_token"]
    uuid.UUID(body["account_id"])
    uuid.UUID(body["session_id"])
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("pragma") == "no-cache"
    return body


def assert_default_token_response(response: Any, scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
    """A token response under the default settings, with this scope."""
    body = assert_token_response(response)
    assert body["expires_in"] == 600
    assert body["refresh_expires_in"] == 604800
    assert body["scope"] == scope
    return body


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def access_works(api: Api, tokens: dict[str, Any]) -> None:
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200, me.text
    assert me.json["session_id"] == tokens["session_id"]


async def access_refused(api: Api, access_token: str) -> None:
    me = await api.request("GET", "/api/me", token=access_token)
    assert_error(me, 401, "invalid_token")
    challenge = me.headers.get("www-authenticate", "")
    assert challenge.startswith('Bearer realm="api"'), challenge
    assert 'error="invalid_token"' in challenge, challenge


async def refresh_works(api: Api, refresh_token: str) -> dict[str, Any]:
    return assert_token_response(await api.refresh(refresh_token))


async def refresh_refused(api: Api, refresh_token: str) -> None:
    assert_error(await api.refresh(refresh_token), 401, "invalid_grant")


async def session_refused(api: Api, tokens: dict[str, Any]) -> None:
    """Neither the access nor the refresh token of this session works any more."""
    await access_refused(api, tokens["access_token"])
    await refresh_refused(api, tokens["refresh_token"])


async def session_works(api: Api, tokens: dict[str, Any]) -> dict[str, Any]:
    """The access token works and the refresh token rotates; the new pair, which works too."""
    await access_works(api, tokens)
    fresh = await refresh_works(api, tokens["refresh_token"])
    assert fresh["session_id"] == tokens["session_id"]
    await access_works(api, fresh)
    return fresh


async def list_sessions(api: Api, access_token: str) -> list[dict[str, Any]]:
    response = await api.request("GET", "/auth/sessions", token=access_token)
    assert response.status == 200, response.text
    assert set(response.json) == {"sessions", "next_cursor"}, response.json
    sessions: list[dict[str, Any]] = response.json["sessions"]
    return sessions


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


async def login_response(api: Api, username: str, password: str) -> Any:
    return await api.request(
        "POST", "/auth/login", json={"username": username, "password": password}
    )


async def change_password(api: Api, token: str, body: Any) -> Any:
    return await api.request("POST", "/auth/password", token=token, json=body)


async def make_admin(api: Api, password: str = ADMIN_PASSWORD) -> dict[str, Any]:
    """An account with the admin scope, as `create-user --admin` makes one; logged in."""
    await users.create(
        api.app.ctx.db,
        "root",
        await passwords.hash_password(password),
        "notes:read notes:write admin",
    )
    tokens = await api.login("root", password)
    assert "admin" in tokens["scope"].split()
    return tokens
