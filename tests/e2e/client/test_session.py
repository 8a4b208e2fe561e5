"""The client against a real `sanic app.main --workers 2`, over real HTTP: resuming from saved
tokens, OAuth mode, BearerAuth on a plain httpx client, and logout.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
from jwt_refresh_client import AuthClient, BearerAuth, SessionExpired, TokenManager

from tests.support.client import (
    PASSWORD,
    TIMEOUT,
    AsyncSaved,
    Saved,
    Wire,
    assert_all_ok,
    assert_one_session,
    bearer,
    new_username,
    raw,
    raw_login,
    register,
    until_expired,
)

pytestmark = pytest.mark.e2e


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
