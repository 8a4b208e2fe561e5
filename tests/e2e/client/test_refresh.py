"""The client against a real `sanic app.main --workers 2`, over real HTTP: single-flight
refresh (one refresh call however many requests need it, whether the client noticed the
expiry itself or the server answered 401 invalid_token), no rotated refresh token ever sent
again, and SessionExpired on a refused refresh.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from jwt_refresh_client import AuthClient, SessionExpired

from tests.support.client import (
    PASSWORD,
    Saved,
    Wire,
    assert_all_ok,
    assert_one_session,
    bearer,
    claims,
    first_refused,
    new_username,
    raw,
    raw_login,
    register,
    sleep_until,
    until_expired,
)

pytestmark = pytest.mark.e2e


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


class LosesFirstRefreshAnswer(httpx.AsyncBaseTransport):
    """The real network, except that the answer to the first refresh is lost on the way back:
    the server got the request and rotated, the client sees a timeout."""

    def __init__(self) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.lost: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.real.handle_async_request(request)
        if request.url.path == "/auth/refresh" and not self.lost:
            await response.aread()
            await response.aclose()
            self.lost.append(json.loads(request.content)["refresh_token"])
            raise httpx.ReadTimeout("the answer was lost", request=request)
        return response

    async def aclose(self) -> None:
        await self.real.aclose()


async def test_a_refresh_whose_answer_is_lost_is_retried_with_the_same_token(
    server: str,
) -> None:
    username = new_username()
    await register(server, username)
    tokens = await raw_login(server, username)
    await until_expired(tokens)
    transport, wire = LosesFirstRefreshAnswer(), Wire()
    async with AuthClient(server, tokens=tokens, transport=transport, **wire.options) as client:
        response = await client.get("/api/me")
        assert response.status_code == 200, response.text
        assert transport.lost == [tokens["refresh_token"]]
        # the retry sent the token it still held, and got that token's one successor
        assert wire.sent_refresh_tokens == [tokens["refresh_token"]] * 2
        assert client.manager.refreshes == 2
        current = client.tokens
        assert current is not None and current["session_id"] == tokens["session_id"]
        await assert_one_session(server, current["access_token"], tokens["session_id"])
