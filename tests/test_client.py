"""app.client against a real `sanic app.main --workers 2` subprocess, over real HTTP.

What the client's docstring promises, checked on the wire: single-flight refresh (one refresh
call however many requests need it, whether the client noticed the expiry itself or the
server answered 401 invalid_token), no rotated refresh token ever sent again, SessionExpired
on a refused refresh, resuming from saved tokens, OAuth mode, BearerAuth on its own, logout,
and a bounded 503 retry (the one behaviour checked against a tiny local stub, since the real
service can't be made to answer 503 on demand here).

Two servers for the module: one with ACCESS_TOKEN_TTL=2 (tokens expire while we watch) and
one with the defaults (tokens that stay fresh); `clean_state` empties the database and the
Redis prefix after every test.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs

import httpx
import pytest

from app.client import AuthClient, BearerAuth, SessionExpired, TokenManager
from tests.support import live_server

pytestmark = pytest.mark.e2e

TIMEOUT = httpx.Timeout(10.0)
PASSWORD = "correct horse battery"
_names = itertools.count()


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    """Two workers, access tokens that live 2 seconds."""
    with live_server(workers=2, ACCESS_TOKEN_TTL="2") as base:
        yield base


@pytest.fixture(scope="module")
def default_server(database: str) -> Iterator[str]:
    """Two workers, the default settings (access tokens live 600 seconds)."""
    with live_server(workers=2) as base:
        yield base


# -- helpers -------------------------------------------------------------------------------


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


# -- single flight ---------------------------------------------------------------------------


async def test_fifty_concurrent_requests_after_expiry_share_one_refresh(server: str) -> None:
    """The headline: an expired access token, 50 concurrent requests, one refresh call."""
    username = new_username()
    await register(server, username)
    wire, saved = Wire(), Saved()
    async with AuthClient(server, on_tokens=saved, **wire.options) as client:
        login = await client.login(username, PASSWORD)
        assert saved.responses == [login]
        assert client.tokens == login
        assert client.manager.refreshes == 0

        await until_expired(login)
        expired = await raw(server, "GET", "/api/me", headers=bearer(login["access_token"]))
        assert expired.status_code == 401, expired.text  # the server does refuse it now

        responses = await asyncio.wait_for(
            asyncio.gather(*(client.get("/api/me") for _ in range(50)), return_exceptions=True),
            timeout=20,
        )
        assert_all_ok(responses, login["session_id"])

        # exactly one refresh: the manager's count, the callback's, and on the wire
        assert client.manager.refreshes == 1
        new = saved.responses[1:]
        assert len(new) == 1, new
        assert new[0]["session_id"] == login["session_id"]
        assert new[0]["refresh_token"] != login["refresh_token"]
        assert new[0]["access_token"] != login["access_token"]
        assert wire.sent_refresh_tokens == [login["refresh_token"]]
        assert client.tokens == new[0]

        # and the same session, the only one
        await assert_one_session(server, new[0]["access_token"], login["session_id"])
        sessions = await client.get("/auth/sessions")
        assert [s["id"] for s in sessions.json()["sessions"]] == [login["session_id"]]
        assert client.manager.refreshes == 1


async def test_server_refusal_at_expiry_is_refreshed_once_and_retried(server: str) -> None:
    """refresh_margin=0: the client uses its token up to the last instant, so requests fired
    right at expiry reach the server after it: 401 invalid_token, then one shared refresh."""
    refused = 0
    for _attempt in range(4):  # the 401s depend on timing; each attempt checks everything
        username = new_username()
        await register(server, username)
        wire, saved = Wire(), Saved()
        async with AuthClient(server, on_tokens=saved, refresh_margin=0, **wire.options) as client:
            login = await client.login(username, PASSWORD)
            await sleep_until(claims(login["access_token"])["exp"] - 0.004)
            responses = await asyncio.wait_for(
                asyncio.gather(*(client.get("/api/me") for _ in range(30)), return_exceptions=True),
                timeout=20,
            )
            assert_all_ok(responses, login["session_id"])
            assert client.manager.refreshes == 1
            assert len(saved.responses) == 2, saved.responses
            assert wire.sent_refresh_tokens == [login["refresh_token"]]
            await assert_one_session(
                server, saved.responses[-1]["access_token"], login["session_id"]
            )
            refused = sum(first_refused(r) for r in responses)  # type: ignore[arg-type]
            if refused:
                # every refused request was sent again, with the new token
                for response in responses:
                    if first_refused(response):  # type: ignore[arg-type]
                        first = response.history[0]  # type: ignore[union-attr]
                        assert 'error="invalid_token"' in first.headers["www-authenticate"]
                        assert response.request.headers["authorization"] == (  # type: ignore[union-attr]
                            f"Bearer {saved.responses[-1]['access_token']}"
                        )
                break
    assert refused, "no request reached the server after expiry in 4 attempts"


async def test_refused_token_is_refreshed_with_own_refresh_token(default_server: str) -> None:
    """A fresh-looking access token that the server refuses (another session's, logged out):
    one refresh with the client's own refresh token, the request retried, 200."""
    base = default_server
    username = new_username()
    await register(base, username)
    mine = await raw_login(base, username)
    other = await raw_login(base, username)
    out = await raw(base, "POST", "/auth/logout", headers=bearer(other["access_token"]))
    assert out.status_code == 204, out.text

    saved_tokens = dict(mine, access_token=other["access_token"])
    wire, saved = Wire(), Saved()
    async with AuthClient(base, tokens=saved_tokens, on_tokens=saved, **wire.options) as client:
        response = await client.get("/api/me")
        assert response.status_code == 200, response.text
        assert response.json()["session_id"] == mine["session_id"]
        assert first_refused(response)
        assert 'error="invalid_token"' in response.history[0].headers["www-authenticate"]
        assert client.manager.refreshes == 1
        assert wire.sent_refresh_tokens == [mine["refresh_token"]]
        assert wire.requests == [("GET", "/api/me"), ("POST", "/auth/refresh"), ("GET", "/api/me")]
        assert len(saved.responses) == 1
        assert saved.responses[0]["session_id"] == mine["session_id"]
        assert client.tokens == saved.responses[0]
        await assert_one_session(base, saved.responses[0]["access_token"], mine["session_id"])


async def test_concurrent_refusals_share_one_refresh(default_server: str) -> None:
    """30 concurrent requests all refused by the server (401 invalid_token): one refresh."""
    base = default_server
    username = new_username()
    await register(base, username)
    mine = await raw_login(base, username)
    other = await raw_login(base, username)
    out = await raw(base, "POST", "/auth/logout", headers=bearer(other["access_token"]))
    assert out.status_code == 204, out.text

    wire, saved = Wire(), Saved()
    tokens = dict(mine, access_token=other["access_token"])
    async with AuthClient(base, tokens=tokens, on_tokens=saved, **wire.options) as client:
        responses = await asyncio.wait_for(
            asyncio.gather(*(client.get("/api/me") for _ in range(30)), return_exceptions=True),
            timeout=20,
        )
        assert_all_ok(responses, mine["session_id"])
        assert all(first_refused(r) for r in responses)  # type: ignore[arg-type]
        assert client.manager.refreshes == 1
        assert len(saved.responses) == 1
        assert wire.sent_refresh_tokens == [mine["refresh_token"]]
        await assert_one_session(base, saved.responses[0]["access_token"], mine["session_id"])


async def test_no_rotated_refresh_token_is_ever_sent(server: str) -> None:
    """Three rounds of 20 concurrent requests across expiries (proactive and server-refused
    refreshes mixed): each refresh sends the newest refresh token, never an old one, and the
    session survives (a reused token would end it)."""
    username = new_username()
    await register(server, username)
    wire, saved = Wire(), Saved()
    async with AuthClient(server, on_tokens=saved, refresh_margin=0, **wire.options) as client:
        login = await client.login(username, PASSWORD)
        for offset in (0.3, -0.004, 0.05):
            current = client.tokens
            assert current is not None
            await sleep_until(claims(current["access_token"])["exp"] + offset)
            responses = await asyncio.wait_for(
                asyncio.gather(*(client.get("/api/me") for _ in range(20)), return_exceptions=True),
                timeout=20,
            )
            assert_all_ok(responses, login["session_id"])

        assert client.manager.refreshes == 3
        assert len(saved.responses) == 4
        # the refresh tokens sent: login's, then each rotation's, in order, none twice
        expected = [t["refresh_token"] for t in saved.responses[:3]]
        assert wire.sent_refresh_tokens == expected
        assert len(set(wire.sent_refresh_tokens)) == 3
        assert {t["session_id"] for t in saved.responses} == {login["session_id"]}

        final = client.tokens
        assert final == saved.responses[-1]
    await assert_one_session(server, final["access_token"], login["session_id"])
    me = await raw(server, "GET", "/api/me", headers=bearer(final["access_token"]))
    assert me.status_code == 200, me.text
    # the newest refresh token still works: the session was never taken for stolen
    again = await raw(
        server, "POST", "/auth/refresh", json={"refresh_token": final["refresh_token"]}
    )
    assert again.status_code == 200, again.text
    assert again.json()["session_id"] == login["session_id"]


async def test_refused_token_with_a_streamed_body_is_sent_again(default_server: str) -> None:
    """The retry after a 401 must work for any request body the caller may send, a streamed
    one included (BearerAuth sets `requires_request_body` for exactly this)."""
    base = default_server
    username = new_username()
    await register(base, username)
    mine = await raw_login(base, username)
    other = await raw_login(base, username)
    out = await raw(base, "POST", "/auth/logout", headers=bearer(other["access_token"]))
    assert out.status_code == 204, out.text

    async def body() -> Any:
        yield b'{"title": "streamed", '
        yield b'"body": "in two chunks"}'

    async with AuthClient(base, tokens=dict(mine, access_token=other["access_token"])) as client:
        created = await client.post(
            "/api/notes", content=body(), headers={"content-type": "application/json"}
        )
        assert created.status_code == 201, created.text
        assert first_refused(created)
        assert created.json()["title"] == "streamed"
        assert client.manager.refreshes == 1
        listed = await client.get("/api/notes")
        assert [n["title"] for n in listed.json()["notes"]] == ["streamed"]


# -- a refused refresh -----------------------------------------------------------------------


async def test_refused_refresh_after_expiry_raises_session_expired(server: str) -> None:
    username = new_username()
    await register(server, username)
    wire, saved = Wire(), Saved()
    async with (
        AuthClient(server, on_tokens=saved, **wire.options) as client,
        AuthClient(server) as other,
    ):
        login = await client.login(username, PASSWORD)
        assert (await client.get("/api/me")).status_code == 200
        await other.login(username, PASSWORD)
        ended = await other.post("/auth/logout-all")
        assert ended.status_code == 204, ended.text

        await until_expired(login)
        with pytest.raises(SessionExpired):
            await asyncio.wait_for(client.get("/api/me"), timeout=20)
        assert client.tokens is None
        assert client.manager.refreshes == 1
        assert wire.sent_refresh_tokens == [login["refresh_token"]]
        assert saved.responses == [login]  # nothing new was announced

        # not logged in any more: raised at once, nothing sent
        sent = len(wire.requests)
        with pytest.raises(SessionExpired):
            await client.get("/api/me")
        with pytest.raises(SessionExpired):
            await client.post("/api/notes", json={"title": "t", "body": "b"})
        assert len(wire.requests) == sent
        assert client.manager.refreshes == 1


async def test_refused_refresh_under_concurrency(default_server: str) -> None:
    """The session ends while the access token is still fresh: the server refuses it (401),
    the one refresh is refused too, and every concurrent caller gets SessionExpired."""
    base = default_server
    username = new_username()
    await register(base, username)
    wire = Wire()
    async with AuthClient(base, **wire.options) as client:
        login = await client.login(username, PASSWORD)
        ended = await raw(base, "POST", "/auth/logout-all", headers=bearer(login["access_token"]))
        assert ended.status_code == 204, ended.text

        results = await asyncio.wait_for(
            asyncio.gather(*(client.get("/api/me") for _ in range(10)), return_exceptions=True),
            timeout=20,
        )
        assert all(isinstance(r, SessionExpired) for r in results), results
        assert client.tokens is None
        assert client.manager.refreshes == 1
        assert wire.sent_refresh_tokens == [login["refresh_token"]]
        with pytest.raises(SessionExpired):
            await client.get("/api/me")


async def test_refused_refresh_in_oauth_mode(default_server: str) -> None:
    """The token endpoint refuses with 400 invalid_grant (RFC 6749): SessionExpired too."""
    base = default_server
    username = new_username()
    await register(base, username)
    wire = Wire()
    async with AuthClient(base, oauth=True, **wire.options) as client:
        login = await client.login(username, PASSWORD)
        ended = await raw(base, "POST", "/auth/logout-all", headers=bearer(login["access_token"]))
        assert ended.status_code == 204, ended.text
        with pytest.raises(SessionExpired):
            await asyncio.wait_for(client.get("/api/me"), timeout=20)
        assert client.tokens is None
        assert client.manager.refreshes == 1
        assert wire.sent_refresh_tokens == [login["refresh_token"]]


# -- saved tokens, on_tokens -----------------------------------------------------------------


async def test_saved_tokens_resume_the_session(server: str) -> None:
    username = new_username()
    await register(server, username)
    first = AsyncSaved()
    async with AuthClient(server, on_tokens=first) as client:
        login = await client.login(username, PASSWORD)
    assert first.responses == [login]
    saved = first.store["tokens"]

    # a new client from what was persisted: the same session, no login
    wire, second = Wire(), AsyncSaved()
    second.store["tokens"] = saved
    async with AuthClient(server, tokens=saved, on_tokens=second, **wire.options) as client:
        assert client.tokens == saved
        me = await client.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["session_id"] == login["session_id"]
        assert client.manager.refreshes == 0

        await until_expired(saved)
        me = await client.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["session_id"] == login["session_id"]
        assert client.manager.refreshes == 1
        assert wire.sent_refresh_tokens == [saved["refresh_token"]]  # the saved one
        assert len(second.responses) == 1
        assert second.store["tokens"] == second.responses[0] == client.tokens
        assert second.store["tokens"]["session_id"] == login["session_id"]
        assert second.store["tokens"]["refresh_token"] != saved["refresh_token"]

    # and again from the newest persisted tokens: still the same session
    resumed = second.store["tokens"]
    async with AuthClient(server, tokens=resumed) as client:
        me = await client.get("/api/me")
        assert me.status_code == 200, me.text
        assert me.json()["session_id"] == login["session_id"]
    await assert_one_session(server, resumed["access_token"], login["session_id"])


# -- OAuth mode ------------------------------------------------------------------------------


async def test_oauth_mode_login_refresh_and_narrowed_scope(server: str) -> None:
    username = new_username()
    wire, narrow_wire = Wire(), Wire()
    async with (
        AuthClient(server, oauth=True, **wire.options) as client,
        AuthClient(server, oauth=True, **narrow_wire.options) as narrow,
    ):
        account = await client.register(username, PASSWORD)
        assert account["username"] == username

        login = await client.login(username, PASSWORD)
        assert login["scope"] == "notes:read notes:write"
        assert wire.token_grants == [
            {"grant_type": "password", "username": username, "password": PASSWORD}
        ]
        narrowed = await narrow.login(username, PASSWORD, scope="notes:read")
        assert narrowed["scope"] == "notes:read"
        assert narrow_wire.token_grants[0]["scope"] == "notes:read"

        created = await client.post("/api/notes", json={"title": "t", "body": "b"})
        assert created.status_code == 201, created.text

        denied = await narrow.post("/api/notes", json={"title": "t2", "body": "b2"})
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"] == "insufficient_scope"
        assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
        listed = await narrow.get("/api/notes")
        assert listed.status_code == 200, listed.text
        assert [n["id"] for n in listed.json()["notes"]] == [created.json()["id"]]
        assert narrow.manager.refreshes == 0  # a 403 is an answer, not a reason to refresh

        # both expire; each refreshes with grant_type=refresh_token on /auth/token
        await until_expired(narrowed)
        me, still_denied = await asyncio.gather(
            client.get("/api/me"), narrow.post("/api/notes", json={"title": "t3", "body": "b3"})
        )
        assert me.status_code == 200, me.text
        assert me.json()["session_id"] == login["session_id"]
        assert client.manager.refreshes == 1
        assert wire.token_grants[1:] == [
            {"grant_type": "refresh_token", "refresh_token": login["refresh_token"]}
        ]
        assert ("POST", "/auth/refresh") not in wire.requests
        assert client.tokens is not None and client.tokens["session_id"] == login["session_id"]

        # the narrowed session stays narrow across its refresh
        assert still_denied.status_code == 403, still_denied.text
        assert narrow.manager.refreshes == 1
        assert narrow_wire.sent_refresh_tokens == [narrowed["refresh_token"]]
        assert narrow.tokens is not None and narrow.tokens["scope"] == "notes:read"
        listed = await narrow.get("/api/notes")
        assert listed.status_code == 200, listed.text


# -- BearerAuth on its own -------------------------------------------------------------------


async def test_bearer_auth_with_a_plain_httpx_client(server: str) -> None:
    username = new_username()
    await register(server, username)
    login = await raw_login(server, username)
    saved = Saved()
    async with httpx.AsyncClient(base_url=server, timeout=TIMEOUT) as http:
        manager = TokenManager(http, tokens=login, on_tokens=saved)
        async with httpx.AsyncClient(
            base_url=server, timeout=TIMEOUT, auth=BearerAuth(manager)
        ) as api:
            me = await api.get("/api/me")
            assert me.status_code == 200, me.text
            assert me.json()["session_id"] == login["session_id"]
            assert manager.refreshes == 0

            await until_expired(login)
            responses = await asyncio.wait_for(
                asyncio.gather(*(api.get("/api/me") for _ in range(10)), return_exceptions=True),
                timeout=20,
            )
            assert_all_ok(responses, login["session_id"])
            assert manager.refreshes == 1
            assert len(saved.responses) == 1
            assert manager.tokens == saved.responses[0]
            assert saved.responses[0]["session_id"] == login["session_id"]
            created = await api.post("/api/notes", json={"title": "t", "body": "b"})
            assert created.status_code == 201, created.text
    await assert_one_session(server, saved.responses[0]["access_token"], login["session_id"])


# -- logout ----------------------------------------------------------------------------------


async def test_logout_ends_the_session_and_forgets_the_tokens(default_server: str) -> None:
    base = default_server
    username = new_username()
    await register(base, username)
    async with AuthClient(base) as client:
        login = await client.login(username, PASSWORD)
        assert (await client.get("/api/me")).status_code == 200
        await client.logout()
        assert client.tokens is None

        me = await raw(base, "GET", "/api/me", headers=bearer(login["access_token"]))
        assert me.status_code == 401, me.text
        assert 'error="invalid_token"' in me.headers["www-authenticate"]
        refreshed = await raw(
            base, "POST", "/auth/refresh", json={"refresh_token": login["refresh_token"]}
        )
        assert refreshed.status_code == 401, refreshed.text
        assert refreshed.json()["error"] == "invalid_grant"

        with pytest.raises(SessionExpired):
            await client.get("/api/me")
        await client.logout()  # logged out already: nothing to do, no error
        assert client.tokens is None

        # logging in again on the same client works
        again = await client.login(username, PASSWORD)
        assert again["session_id"] != login["session_id"]
        assert (await client.get("/api/me")).status_code == 200


async def test_logout_with_an_expired_access_token(server: str) -> None:
    """logout() refreshes first when it must, and the session still ends on the server."""
    username = new_username()
    await register(server, username)
    saved = Saved()
    async with AuthClient(server, on_tokens=saved) as client:
        login = await client.login(username, PASSWORD)
        await until_expired(login)
        await asyncio.wait_for(client.logout(), timeout=20)
        assert client.tokens is None
        assert client.manager.refreshes == 1
    newest = saved.responses[-1]
    assert newest["session_id"] == login["session_id"]
    me = await raw(server, "GET", "/api/me", headers=bearer(newest["access_token"]))
    assert me.status_code == 401, me.text
    refreshed = await raw(
        server, "POST", "/auth/refresh", json={"refresh_token": newest["refresh_token"]}
    )
    assert refreshed.status_code == 401, refreshed.text


# -- 503 and Retry-After (a local stub: the real service can't be made to answer 503 here) ---


class Stub:
    """A minimal HTTP/1.1 server on 127.0.0.1: answers 503 (with `retry_after`) to the first
    `failures` requests, then 201 with an account body. Counts the requests it got."""

    def __init__(self, failures: int, retry_after: str = "0") -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.requests: list[tuple[str, bytes]] = []
        self.server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> Stub:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await asyncio.wait_for(reader.readexactly(length), timeout=5)
            self.requests.append((lines[0], body))
            if len(self.requests) <= self.failures:
                status, extra = "503 Service Unavailable", f"Retry-After: {self.retry_after}\r\n"
                payload = {"error": "temporarily_unavailable", "error_description": "stub"}
            else:
                status, extra = "201 Created", ""
                payload = {"id": "1", "username": "stub", "created_at": "2024-01-01T00:00:00Z"}
            data = json.dumps(payload).encode()
            writer.write(
                (
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n{extra}Connection: close\r\n\r\n"
                ).encode()
                + data
            )
            await writer.drain()
        finally:
            writer.close()


async def test_503_is_retried_after_retry_after() -> None:
    async with Stub(failures=2) as stub, AuthClient(stub.base) as client:
        account = await asyncio.wait_for(client.register("stubuser", PASSWORD), timeout=10)
        assert account["username"] == "stub"
        assert len(stub.requests) == 3
        assert all(line.startswith("POST /auth/register ") for line, _ in stub.requests)
        assert {json.loads(body)["username"] for _, body in stub.requests} == {"stubuser"}


async def test_503_retries_are_bounded() -> None:
    async with Stub(failures=2) as stub, AuthClient(stub.base, max_retries=1) as client:
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await asyncio.wait_for(client.register("stubuser", PASSWORD), timeout=10)
        assert raised.value.response.status_code == 503
        assert raised.value.response.headers["retry-after"] == "0"
        assert len(stub.requests) == 2

    # a huge Retry-After is capped by max_retry_after: still quick, still bounded
    async with (
        Stub(failures=100, retry_after="3600") as stub,
        AuthClient(stub.base, max_retries=2, max_retry_after=0.05) as client,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await asyncio.wait_for(client.register("stubuser", PASSWORD), timeout=10)
        assert raised.value.response.status_code == 503
        assert len(stub.requests) == 3
        assert time.monotonic() - started < 5
