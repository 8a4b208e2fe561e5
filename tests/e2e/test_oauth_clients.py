"""Standard OAuth 2.0 client libraries as users run them against a real `sanic app.main
--workers 2`: authlib's AsyncOAuth2Client with its defaults."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from authlib.integrations.httpx_client import AsyncOAuth2Client

from tests.support import live_server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
_names = itertools.count()


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    """Access tokens that live 20 seconds: less than authlib's default 60-second leeway, so
    every call finds its token "about to expire" and refreshes it."""
    with live_server(workers=2, ACCESS_TOKEN_TTL="20") as base:
        yield base


async def test_authlib_with_its_default_leeway_refreshing_from_every_task(server: str) -> None:
    """authlib takes its refresh token before the lock that serialises refreshes, so 20
    concurrent calls present the same refresh token one after another: each of them must get
    that token's one successor (they used to get `invalid_grant`, 19 of 20)."""
    username = f"authlib_{next(_names)}"
    async with httpx.AsyncClient(base_url=server, timeout=10) as http:
        response = await http.post(
            "/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text

    updates: list[dict[str, Any]] = []

    async def update_token(token: dict[str, Any], **_: Any) -> None:
        updates.append(dict(token))

    async with AsyncOAuth2Client(
        client_id="demo-app",
        token_endpoint=f"{server}/auth/token",
        update_token=update_token,
        timeout=10,
    ) as client:
        token = await client.fetch_token(username=username, password=PASSWORD)
        session_id = token["session_id"]
        for round_ in range(3):
            responses = await asyncio.gather(
                *(client.get(f"{server}/api/me") for _ in range(20)), return_exceptions=True
            )
            problems = [r for r in responses if not isinstance(r, httpx.Response)]
            assert not problems, (round_, problems[:3])
            assert [r.status_code for r in responses] == [200] * 20, (
                round_,
                [r.text for r in responses if r.status_code != 200][:3],
            )
            assert {r.json()["session_id"] for r in responses} == {session_id}
        sessions = await client.get(f"{server}/auth/sessions")
    assert sessions.status_code == 200, sessions.text
    assert [s["id"] for s in sessions.json()["sessions"]] == [session_id]
    assert updates, "authlib never refreshed: the test proves nothing"
    assert {update["session_id"] for update in updates} == {session_id}
