"""Login rate limiting (policy: app/limits.py): attempts answer 429 rate_limited with a
Retry-After once a limit is reached, before any password hashing, on /auth/login and
/auth/token alike; one address never locks the owner out from another.

The ASGI test client sends every request from one peer address ("mockserver"). To see the
limits across addresses, the tests point the client's ASGI transport at another peer address
(`from_address`); each switch is checked through the `ip` the session list records, so the
app really saw that address.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from app import passwords
from app.limits import address_group
from tests.support import REDIS_PREFIX, Api
from tests.support.asserts import assert_error

PASSWORD = "correct horse"
WRONG = "wrong password"
FORM = {"content-type": "application/x-www-form-urlencoded"}
PAIR_KEY = REDIS_PREFIX + "login:pair:"  # app/stores/ratelimit.py: account|address
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


async def peer_address(api: Api) -> str:
    """The address the app sees this client at (as the limiter keys it)."""
    tokens = await api.user("whoami", PASSWORD)
    listed = await api.request("GET", "/auth/sessions", token=tokens["access_token"])
    return address_group(listed.json["sessions"][0]["ip"])


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


async def test_one_address_never_locks_the_owner_out_from_another(api: Api) -> None:
    await api.register("alice", PASSWORD)
    # the transport switch really changes the address the app sees
    with from_address(api, "10.0.0.250"):
        tokens = await api.login("alice", PASSWORD)
    sessions = await api.request("GET", "/auth/sessions", token=tokens["access_token"])
    assert sessions.json["sessions"][0]["ip"] == "10.0.0.250", sessions.json

    with from_address(api, "203.0.113.9"):  # the attacker
        await fail(api, "alice", 10)
        assert_rate_limited(await login(api, "alice", PASSWORD))
        # a forwarding header claimed by the client changes nothing
        response = await api.request(
            "POST",
            "/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.7", "X-Real-IP": "192.0.2.7"},
        )
        assert_rate_limited(response)
    # the owner, from their own address (known or new), logs in and changes the password
    for address in ("10.0.0.250", "10.0.0.251"):
        with from_address(api, address):
            tokens = await api.login("alice", PASSWORD)
    with from_address(api, "10.0.0.251"):
        changed = await api.request(
            "POST",
            "/auth/password",
            token=tokens["access_token"],
            json={"current_password": PASSWORD, "new_password": "a new password 1"},
        )
    assert changed.status == 200, changed.text


async def test_distributed_guessing_is_throttled_except_from_known_addresses(api: Api) -> None:
    await api.register("alice", PASSWORD)
    with from_address(api, "10.0.0.250"):
        await api.login("alice", PASSWORD)  # the owner's device: a known address
    for attacker in range(10):  # ten at each of ten addresses: the account's 100
        with from_address(api, f"198.51.100.{attacker + 1}"):
            await fail(api, "alice", 10)
    with from_address(api, "198.51.100.200"):  # a new address: throttled, even rightly
        assert_rate_limited(await login(api, "alice", PASSWORD))
    with from_address(api, "10.0.0.250"):  # the owner's: not
        tokens = await api.login("alice", PASSWORD)
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200


async def test_one_address_is_limited_across_accounts(api: Api) -> None:
    for index in range(6):
        await api.register(f"user{index}", PASSWORD)
    for index in range(5):  # 50 failures from this address, ten per account
        await fail(api, f"user{index}", 10)
    # a sixth account, never tried before, is refused from this address ...
    assert_rate_limited(await login(api, "user5", PASSWORD))
    # ... and not from another one
    with from_address(api, "10.0.9.9"):
        await api.login("user5", PASSWORD)


async def test_ipv6_addresses_count_by_their_64(api: Api) -> None:
    await api.register("alice", PASSWORD)
    for host in range(10):
        with from_address(api, f"2001:db8:0:7::{host + 1:x}"):
            assert_error(await login(api, "alice", WRONG), 401, "invalid_grant")
    with from_address(api, "2001:db8:0:7::ffff"):  # the same /64
        assert_rate_limited(await login(api, "alice", PASSWORD))
    with from_address(api, "2001:db8:0:8::1"):  # the next /64
        await api.login("alice", PASSWORD)


async def test_behind_a_proxy_the_forwarded_address_counts(make_api: Callable[..., Api]) -> None:
    api = make_api(proxies_count=1)
    await api.register("alice", PASSWORD)

    async def attempt(address: str, password: str) -> Any:
        return await api.request(
            "POST",
            "/auth/login",
            json={"username": "alice", "password": password},
            headers={"X-Forwarded-For": address},
        )

    for _ in range(10):
        assert_error(await attempt("192.0.2.50", WRONG), 401, "invalid_grant")
    assert_rate_limited(await attempt("192.0.2.50", PASSWORD))
    answer = await attempt("192.0.2.51", PASSWORD)
    assert answer.status == 200, answer.text
    sessions = await api.request("GET", "/auth/sessions", token=answer.json["access_token"])
    assert sessions.json["sessions"][0]["ip"] == "192.0.2.51"


async def test_account_can_log_in_after_the_window(api: Api, redis: Redis) -> None:
    await api.register("alice", PASSWORD)
    await fail(api, "alice", 10)
    assert_rate_limited(await login(api, "alice", PASSWORD))
    key = PAIR_KEY + "alice|" + await peer_address(api)
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
    key = PAIR_KEY + "alice|" + await peer_address(api)
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


async def test_successful_logins_are_limited_too(api: Api) -> None:
    """Each costs a hash: thirty a minute per account, then 429 (the right password too)."""
    await api.register("alice", PASSWORD)
    for _ in range(30):
        await api.login("alice", PASSWORD)
    assert_rate_limited(await login(api, "alice", PASSWORD))


async def test_a_success_never_leaves_a_counter_below_zero(
    api: Api, redis: Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A success takes its attempt back; if the window ran out meanwhile, nothing is taken
    back (a negative count would be a budget of guesses of its own)."""
    await api.register("alice", PASSWORD)
    group = await peer_address(api)
    counters = [f"{REDIS_PREFIX}login:{kind}" for kind in (f"address:{group}", "account:alice")]
    await fail(api, "alice", 3)
    verify = passwords.verify_password

    async def window_ends_meanwhile(password_hash: str | None, password: str) -> Any:
        await redis.delete(*counters)  # the windows run out while the hash is checked
        return await verify(password_hash, password)

    monkeypatch.setattr(passwords, "verify_password", window_ends_meanwhile)
    await api.login("alice", PASSWORD)
    for key in counters:
        assert await redis.get(key) is None, key  # not -1 with a fresh window
    keys = [key async for key in redis.scan_iter(match=REDIS_PREFIX + "login:*")]
    for key in keys:
        if await redis.type(key) == "string":
            assert int(await redis.get(key)) >= 0, key


async def test_a_wrong_current_password_is_counted_and_never_a_second_guess(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    # the real password given as the new one proves nothing: 403, not a password change
    answer = await api.request(
        "POST",
        "/auth/password",
        token=tokens["access_token"],
        json={"current_password": "not the password", "new_password": PASSWORD},
    )
    assert_error(answer, 403, "wrong_password")
    for _ in range(9):
        answer = await api.request(
            "POST",
            "/auth/password",
            token=tokens["access_token"],
            json={"current_password": "not the password", "new_password": "x new password 1"},
        )
        assert_error(answer, 403, "wrong_password")
    answer = await api.request(
        "POST",
        "/auth/password",
        token=tokens["access_token"],
        json={"current_password": PASSWORD, "new_password": "x new password 1"},
    )
    assert_rate_limited(answer)
