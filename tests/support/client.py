"""Helpers of the client tests (tests/e2e/client): what went over the wire, saved token
responses, and plain-httpx steps that bypass the client under test."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from typing import Any
from urllib.parse import parse_qs

import httpx

TIMEOUT = httpx.Timeout(10.0)
PASSWORD = "correct horse battery"
_names = itertools.count()


def new_username() -> str:
    return f"client_user{next(_names)}"


def claims(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    decoded: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    )
    return decoded


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


async def until_expired(tokens: dict[str, Any], extra: float = 0.3) -> None:
    """Sleep until the server refuses this access token as expired (plus `extra` seconds)."""
    await sleep_until(claims(tokens["access_token"])["exp"] + extra)


class Wire:
    """An httpx request hook: every request that left the client, and every refresh token
    it sent (to /auth/refresh as JSON, or to /auth/token as grant_type=refresh_token)."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str]] = []
        self.sent_refresh_tokens: list[str] = []
        self.token_grants: list[dict[str, str]] = []

    async def hook(self, request: httpx.Request) -> None:
        self.requests.append((request.method, request.url.path))
        if request.url.path == "/auth/refresh":
            self.sent_refresh_tokens.append(json.loads(request.content)["refresh_token"])
        elif request.url.path == "/auth/token":
            assert request.headers["content-type"] == "application/x-www-form-urlencoded"
            form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
            self.token_grants.append(form)
            if form.get("grant_type") == "refresh_token":
                self.sent_refresh_tokens.append(form["refresh_token"])

    @property
    def options(self) -> dict[str, Any]:
        return {"event_hooks": {"request": [self.hook]}}


class Saved:
    """An `on_tokens` callback that persists every token response (the last one in `store`)."""

    def __init__(self) -> None:
        self.responses: list[dict[str, Any]] = []
        self.store: dict[str, Any] = {}

    def __call__(self, tokens: dict[str, Any]) -> None:
        self.responses.append(tokens)
        self.store["tokens"] = tokens


class AsyncSaved(Saved):
    """The same, as a coroutine callback (the client awaits it)."""

    async def __call__(self, tokens: dict[str, Any]) -> None:  # type: ignore[override]
        await asyncio.sleep(0)
        super().__call__(tokens)


async def register(base: str, username: str, password: str = PASSWORD) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        response = await http.post(
            "/auth/register", json={"username": username, "password": password}
        )
    assert response.status_code == 201, response.text


async def raw_login(base: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        response = await http.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


async def raw(base: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(base_url=base, timeout=TIMEOUT) as http:
        return await http.request(method, path, **kwargs)


async def assert_one_session(base: str, access_token: str, session_id: str) -> None:
    """GET /auth/sessions (with a plain httpx client): exactly this one session, alive."""
    response = await raw(base, "GET", "/auth/sessions", headers=bearer(access_token))
    assert response.status_code == 200, response.text
    sessions = response.json()["sessions"]
    assert [s["id"] for s in sessions] == [session_id], sessions
    assert sessions[0]["current"] is True, sessions


def assert_all_ok(responses: list[Any], session_id: str) -> None:
    problems = [r for r in responses if not isinstance(r, httpx.Response) or r.status_code != 200]
    assert not problems, problems[:5]
    assert {r.json()["session_id"] for r in responses} == {session_id}


def first_refused(response: httpx.Response) -> bool:
    """Whether this response came from a retry after the server refused the token (401)."""
    return bool(response.history) and response.history[0].status_code == 401
