"""Login rate limiting: repeated failures for one account answer 429 rate_limited with a
Retry-After, before any password hashing, on /auth/login and /auth/token alike.

The ASGI test client sends every request from one peer address ("mockserver"). To see the
per-account limit across addresses, the tests point the client's ASGI transport at another
peer address (`from_address`); each switch is checked through the `ip` the session list
records, so the app really saw that address.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from redis.asyncio import Redis

from app import passwords
from tests.support import REDIS_PREFIX, Api
from tests.support.asserts import assert_error

PASSWORD = "correct horse"
WRONG = "wrong password"
FORM = {"content-type": "application/x-www-form-urlencoded"}
ACCOUNT_KEY = REDIS_PREFIX + "loginfail:account:"  # app/stores/ratelimit.py
WINDOW = 15 * 60


def assert_rate_limited(response: Any) -> int:
    assert_error(response, 429, "rate_limited")
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None, response.headers
    assert retry_after.isdigit(), retry_after
    seconds = int(retry_after)
    assert 0 < seconds <= WINDOW, seconds
    return seconds


async def login(api: Api, username: str, password: str) -> Any:
    return await api.request(
        "POST", "/auth/login", json={"username": username, "password": password}
    )


async def token_grant(api: Api, username: str, password: str) -> Any:
    return await api.request(
        "POST",
        "/auth/token",
        headers=FORM,
        data={"grant_type": "password", "username": username, "password": password},
    )


async def fail(api: Api, username: str, times: int) -> None:
    for _ in range(times):
        assert_error(await login(api, username, WRONG), 401, "invalid_grant")


@contextmanager
def from_address(api: Api, address: str) -> Iterator[None]:
    transport = api.client._transport
    previous = transport.client
    transport.client = (address, 40000)
    try:
        yield
    finally:
        transport.client = previous


async def timed(api: Api, username: str, password: str) -> tuple[Any, float]:
    started = time.perf_counter()
    response = await login(api, username, password)
    return response, time.perf_counter() - started


async def test_eleventh_attempt_is_429_even_with_the_right_password(api: Api) -> None:
    await api.register("alice", PASSWORD)
    await fail(api, "alice", 10)
    response = await login(api, "alice", PASSWORD)
    assert_rate_limited(response)
    assert "access_token" not in response.text
    # still blocked, whatever is tried; and the case of the name does not matter
    assert_rate_limited(await login(api, "alice", WRONG))
    assert_rate_limited(await login(api, "ALICE", PASSWORD))


async def test_429_is_answered_without_hashing(api: Api) -> None:
    await api.register("alice", PASSWORD)
    await api.login("alice", PASSWORD)  # warm-up
    failed = []
    for _ in range(10):
        response, seconds = await timed(api, "alice", WRONG)
        assert_error(response, 401, "invalid_grant")
        failed.append(seconds)
    blocked = []
    for _ in range(10):
        response, seconds = await timed(api, "alice", PASSWORD)
        assert_rate_limited(response)
        blocked.append(seconds)

    # the cost of one password check on its own, in the same conditions
    stored = await api.app.ctx.db.fetchval("SELECT password_hash FROM users")
    hashing = []
    for _ in range(7):
        started = time.perf_counter()
        assert (await passwords.verify_password(stored, WRONG))[0] is False
        hashing.append(time.perf_counter() - started)

    failed_median, blocked_median = statistics.median(failed), statistics.median(blocked)
    hash_median = statistics.median(hashing)
    # every request through the ASGI client carries the same fixed overhead; a refused login
    # costs that plus one password check, a 429 only that: the gap is about one hash.
    assert blocked_median < failed_median, (blocked_median, failed_median)
    assert failed_median - blocked_median > 0.4 * hash_median, (
        failed_median,
        blocked_median,
        hash_median,
    )


async def test_limit_is_reached_through_the_token_endpoint(api: Api) -> None:
    await api.register("alice", PASSWORD)
    for _ in range(10):
        assert_error(await token_grant(api, "alice", WRONG), 400, "invalid_grant")
    assert_rate_limited(await token_grant(api, "alice", PASSWORD))
    # the two routes share one count
    assert_rate_limited(await login(api, "alice", PASSWORD))


async def test_login_and_token_failures_add_up(api: Api) -> None:
    await api.register("alice", PASSWORD)
    for _ in range(5):
        assert_error(await token_grant(api, "alice", WRONG), 400, "invalid_grant")
    await fail(api, "alice", 5)
    assert_rate_limited(await token_grant(api, "alice", PASSWORD))
    assert_rate_limited(await login(api, "alice", PASSWORD))


async def test_another_account_from_the_same_address_is_not_blocked(api: Api) -> None:
    await api.register("alice", PASSWORD)
    bob = await api.user("bob", PASSWORD)
    await fail(api, "alice", 10)
    assert_rate_limited(await login(api, "alice", PASSWORD))
    # same client address, another account
    again = await api.login("bob", PASSWORD)
    assert again["session_id"] != bob["session_id"]
    assert_error(await login(api, "bob", WRONG), 401, "invalid_grant")


async def test_account_is_blocked_across_addresses(api: Api) -> None:
    await api.register("alice", PASSWORD)
    # the transport switch really changes the address the app sees
    with from_address(api, "10.0.0.250"):
        tokens = await api.login("alice", PASSWORD)
    sessions = await api.request("GET", "/auth/sessions", token=tokens["access_token"])
    assert sessions.json["sessions"][0]["ip"] == "10.0.0.250", sessions.json

    for index in range(10):
        with from_address(api, f"10.0.0.{index + 1}"):
            assert_error(await login(api, "alice", WRONG), 401, "invalid_grant")
    # one failure per address, ten for the account: blocked from any address
    with from_address(api, "10.0.1.1"):
        assert_rate_limited(await login(api, "alice", PASSWORD))
    assert_rate_limited(await login(api, "alice", PASSWORD))
    # a forwarding header claimed by the client changes nothing either
    response = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"X-Forwarded-For": "192.0.2.7", "X-Real-IP": "192.0.2.7"},
    )
    assert_rate_limited(response)


async def test_account_can_log_in_after_the_window(api: Api, redis: Redis) -> None:
    await api.register("alice", PASSWORD)
    await fail(api, "alice", 10)
    assert_rate_limited(await login(api, "alice", PASSWORD))
    key = ACCOUNT_KEY + "alice"
    assert int(await redis.get(key)) >= 10
    ttl = await redis.ttl(key)
    assert 0 < ttl <= WINDOW
    # the window is fixed: blocked attempts do not extend it
    assert_rate_limited(await login(api, "alice", PASSWORD))
    assert await redis.ttl(key) <= ttl

    # let the 15-minute window run out now
    assert await redis.expire(key, 1)
    await asyncio.sleep(1.5)
    tokens = await api.login("alice", PASSWORD)
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200


async def test_retry_after_counts_down_with_the_window(api: Api, redis: Redis) -> None:
    await api.register("alice", PASSWORD)
    await fail(api, "alice", 10)
    key = ACCOUNT_KEY + "alice"
    assert await redis.expire(key, 100)
    seconds = assert_rate_limited(await login(api, "alice", PASSWORD))
    assert 90 <= seconds <= 100, seconds


async def test_successful_login_resets_the_account_count(api: Api) -> None:
    await api.register("alice", PASSWORD)
    await fail(api, "alice", 9)
    await api.login("alice", PASSWORD)
    # nine more failures: under the limit again, since the success started the count afresh
    await fail(api, "alice", 9)
    tokens = await api.login("alice", PASSWORD)
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200
    # and the limit still applies afterwards
    await fail(api, "alice", 10)
    assert_rate_limited(await login(api, "alice", PASSWORD))
