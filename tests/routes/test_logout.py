"""Logout and log out everywhere as a client sees them: which sessions and tokens stop working at
once, and the bounded Redis state these flows leave behind."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from app.limits import Limits
from app.revocation.store import SHARDS
from tests.support import REDIS_PREFIX, Api
from tests.support.asserts import (
    access_refused,
    assert_error,
    assert_token_response,
    change_password,
    claims,
    list_sessions,
    login_response,
    make_admin,
    refresh_refused,
    refresh_works,
    session_refused,
    session_works,
)
from tests.support.monitor import RedisCommands

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple 42"


# -- POST /auth/logout ------------------------------------------------------------------


async def test_logout_ends_only_the_callers_session(api: Api) -> None:
    first = await api.user("alice", PASSWORD)
    second = await api.login("alice", PASSWORD)
    assert first["session_id"] != second["session_id"]

    response = await api.request("POST", "/auth/logout", token=first["access_token"])
    assert response.status == 204, response.text
    assert response.text == ""

    await session_refused(api, first)
    await session_works(api, second)


async def test_logout_twice_with_the_same_token_is_refused(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    assert (await api.request("POST", "/auth/logout", token=tokens["access_token"])).status == 204
    again = await api.request("POST", "/auth/logout", token=tokens["access_token"])
    assert_error(again, 401, "invalid_token")


async def test_logout_of_a_rotated_session_kills_the_newest_tokens(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    rotated = await refresh_works(api, tokens["refresh_token"])
    assert (await api.request("POST", "/auth/logout", token=tokens["access_token"])).status == 204
    await session_refused(api, rotated)
    await access_refused(api, tokens["access_token"])


# -- POST /auth/logout-all --------------------------------------------------------------


async def test_logout_all_ends_every_session_of_the_user(api: Api) -> None:
    sessions = [await api.user("alice", PASSWORD)]
    sessions += [await api.login("alice", PASSWORD) for _ in range(2)]
    # one of them rotated: both its old access token and its new pair must die
    rotated = await refresh_works(api, sessions[2]["refresh_token"])
    bob = await api.user("bob", PASSWORD)

    response = await api.request("POST", "/auth/logout-all", token=sessions[0]["access_token"])
    assert response.status == 204, response.text
    assert response.text == ""

    for tokens in sessions[:2]:
        await session_refused(api, tokens)
    await access_refused(api, sessions[2]["access_token"])
    await session_refused(api, rotated)
    after = await api.login("alice", PASSWORD)
    listed = await list_sessions(api, after["access_token"])
    assert [s["id"] for s in listed] == [after["session_id"]]
    # another user is not touched
    await session_works(api, bob)


async def test_login_right_after_logout_all_works_even_in_the_same_second(
    api: Api, redis: Redis
) -> None:
    tokens = await api.user("alice", PASSWORD)
    same_second_seen = False
    for _ in range(5):
        response = await api.request("POST", "/auth/logout-all", token=tokens["access_token"])
        assert response.status == 204, response.text
        ended_at = time.time()
        fresh = await api.login("alice", PASSWORD)
        logged_in_at = time.time()
        # dated now, never ahead: the cut-off went by version, not by the clock
        assert abs(claims(fresh["access_token"])["iat"] - logged_in_at) < 2
        await access_refused(api, tokens["access_token"])
        # the new session works: its access token, and its refresh token
        tokens = await session_works(api, fresh)
        if int(logged_in_at) == int(ended_at):
            same_second_seen = True
            break
    assert same_second_seen, "never managed a login in the second of the logout-all"
    # and a logout-all after that still ends it
    response = await api.request("POST", "/auth/logout-all", token=tokens["access_token"])
    assert response.status == 204
    await session_refused(api, tokens)


# -- bounded Redis state ----------------------------------------------------------------


async def test_redis_keys_all_expire_and_never_name_a_token(
    make_api: Callable[..., Api], redis: Redis
) -> None:
    api = make_api(refresh_reuse_grace=0)
    seen: list[str] = []

    def keep(tokens: dict[str, Any]) -> dict[str, Any]:
        seen.extend([tokens["access_token"], tokens["refresh_token"]])
        return tokens

    alice = keep(await api.user("alice", PASSWORD))
    rotated = keep(await refresh_works(api, alice["refresh_token"]))
    await refresh_refused(api, alice["refresh_token"])  # reuse: the session ends
    await refresh_refused(api, rotated["refresh_token"])
    second = keep(await api.login("alice", PASSWORD))
    await api.request("POST", "/auth/logout", token=second["access_token"])
    third = keep(await api.login("alice", PASSWORD))
    fourth = keep(await api.login("alice", PASSWORD))
    await api.request(
        "DELETE", f"/auth/sessions/{fourth['session_id']}", token=third["access_token"]
    )
    await api.request(
        "POST",
        "/auth/revoke",
        json={"token": keep(await api.login("alice", PASSWORD))["refresh_token"]},
    )
    await api.request("POST", "/auth/revoke", json={"token": "garbage"})
    changed = keep(
        assert_token_response(
            await change_password(
                api,
                third["access_token"],
                {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
            )
        )
    )
    await api.request("POST", "/auth/logout-all", token=changed["access_token"])
    for _ in range(3):
        await login_response(api, "alice", "wrong password")
        await login_response(api, "nobody", "wrong password")
    bob = keep(await api.user("bob", PASSWORD))
    admin = keep(await make_admin(api))
    await api.request("POST", "/api/admin/users/bob/disable", token=admin["access_token"])
    await refresh_refused(api, bob["refresh_token"])

    keys = [key async for key in redis.scan_iter(match=REDIS_PREFIX + "*", count=500)]
    assert len(keys) >= 5, keys
    # One key per shard is meant to last: the marker that Redis still holds the shard's
    # revocation state. It must go exactly when the data goes (a restart without persistence,
    # a flush), so that the service knows to rebuild it from PostgreSQL; there are SHARDS of
    # them, so nothing grows.
    store = api.app.ctx.revocations.store
    markers = {store.marker_key(n) for n in range(SHARDS)}
    assert markers <= set(keys)
    keys = [key for key in keys if key not in markers]
    known = REDIS_PREFIX + "login:known:"
    assert any(key.startswith(known) for key in keys), keys
    for key in keys:
        ttl = await redis.ttl(key)
        assert ttl > 0, (key, ttl)
        if key.startswith(known):
            # the addresses an account logged in from, for the login limiter: 30 days
            assert ttl <= Limits().known_for, (key, ttl)
            continue
        # nothing lives longer than the longest token it could speak of (the refresh token)
        assert ttl <= 7 * 24 * 3600 + 120, (key, ttl)
        assert "eyJ" not in key, key
        for token in seen:
            for part in token.split("."):
                assert part not in key, key


async def test_a_revocation_is_stored_then_published_then_marked_published(
    api: Api, redis: Redis
) -> None:
    """The mark first (as "not yet published"), then the message, then the mark says
    "published": a worker that subscribes after the message finds the mark in its snapshot,
    and a retry after a failed publish finds the mark not published and publishes again."""
    tokens = await api.user("alice", PASSWORD)
    store = api.app.ctx.revocations.store
    mark = store.session_key(tokens["session_id"])
    events = api.app.ctx.revocations.feed.channels.events
    async with RedisCommands() as log:
        response = await api.request("POST", "/auth/logout", token=tokens["access_token"])
        assert response.status == 204
        await log.sync()
    lines = log.commands
    stored_at = next(i for i, c in enumerate(lines) if c.startswith("SET " + mark + " 0 "))
    publish_at = next(i for i, c in enumerate(lines) if c.startswith("SPUBLISH " + events))
    confirmed_at = next(i for i, c in enumerate(lines) if c.startswith("SET " + mark + " 1 "))
    assert stored_at < publish_at < confirmed_at, lines
    assert await redis.get(mark) == "1"
    assert await store.unmarked([tokens["session_id"]]) == []
    await redis.set(mark, "0", keepttl=True)  # as a publish that failed leaves it
    assert await store.unmarked([tokens["session_id"]]) == [tokens["session_id"]]
