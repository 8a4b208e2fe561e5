"""`python -m app.cli revoke-all` (incident response) over real HTTP: every session of every
user ends and every access token issued before it is refused on the very next request, on
every worker of two hosts; the cut-off survives Redis losing its data; logging in works."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import pytest
from redis.asyncio import Redis

from app.revocation.store import SHARDS
from tests import support
from tests.support import live_server, run_cli

pytestmark = pytest.mark.e2e

FAST = {"CLOCK_SKEW": "1"}  # the cut-off is now + skew + 1 s: new logins work 2 s later


@pytest.fixture(scope="module")
def hosts() -> Iterator[tuple[str, str]]:
    with live_server(workers=2, **FAST) as first, live_server(workers=2, **FAST) as second:
        yield first, second


async def user(http: httpx.AsyncClient, base: str, name: str) -> dict[str, str]:
    await http.post(f"{base}/auth/register", json={"username": name, "password": "correct horse"})
    response = await http.post(
        f"{base}/auth/login", json={"username": name, "password": "correct horse"}
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, str] = response.json()
    return tokens


async def me(base: str, token: str) -> int:
    async with httpx.AsyncClient(timeout=10) as fresh:  # a new connection: any worker
        response = await fresh.get(f"{base}/api/me", headers={"Authorization": f"Bearer {token}"})
    return response.status_code


async def revoke_all() -> str:
    code, out, err = await run_cli("revoke-all", env=support.server_env(**FAST))
    assert code == 0, err
    return out


async def test_revoke_all_refuses_every_token_on_every_host_at_once(
    hosts: tuple[str, str],
) -> None:
    first, second = hosts
    async with httpx.AsyncClient(timeout=10) as http:
        users = [await user(http, base, f"incident{n}") for n, base in enumerate(hosts * 3)]
        for tokens in users:
            assert {
                await me(first, tokens["access_token"]),
                await me(second, tokens["access_token"]),
            } == {200}
        out = await revoke_all()
        assert "6 sessions ended" in out
        for tokens in users:  # the very next request, wherever it lands
            for base in (first, second, first, second):
                assert await me(base, tokens["access_token"]) == 401
            refreshed = await http.post(
                f"{second}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
            )
            assert refreshed.status_code == 401
        await asyncio.sleep(2.1)  # past the cut-off: a login issues tokens that work
        fresh = await http.post(
            f"{first}/auth/login", json={"username": "incident0", "password": "correct horse"}
        )
        assert fresh.status_code == 200
        for base in (first, second):
            assert await me(base, fresh.json()["access_token"]) == 200


async def test_the_cut_off_survives_redis_losing_its_data(hosts: tuple[str, str]) -> None:
    first, _ = hosts
    async with httpx.AsyncClient(timeout=10) as http:
        tokens = await user(http, first, "survivor")
    await revoke_all()
    # Redis loses everything of ours (a restart without persistence); a host that starts now
    # rebuilds the state from PostgreSQL, and the cut-off is part of what comes back
    redis = Redis.from_url(support.REDIS_URL, decode_responses=True)
    try:
        keys = [key async for key in redis.scan_iter(match=support.REDIS_PREFIX + "*")]
        await redis.delete(*keys)
        with live_server(workers=1, **FAST) as third:
            deadline = time.monotonic() + 10
            while (status := await me(third, tokens["access_token"])) == 503:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.2)
            assert status == 401
        for n in range(SHARDS):  # every shard holds the cut-off
            assert await redis.get(f"{support.REDIS_PREFIX}{{rv{n}}}:not-before") is not None
    finally:
        await redis.aclose()
