"""Refresh-token reuse ends the session; a logout racing a refresh leaves nothing alive."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from redis.asyncio import Redis

from tests.support import Api
from tests.support.asserts import (
    access_refused,
    access_works,
    assert_error,
    assert_token_response,
    claims,
    list_sessions,
    refresh_refused,
    refresh_works,
    session_refused,
    session_works,
)

PASSWORD = "correct horse"


# -- refresh-token reuse ----------------------------------------------------------------


async def test_reused_refresh_token_ends_the_session(make_api: Callable[..., Api]) -> None:
    api = make_api(refresh_reuse_grace=0)
    first = await api.user("alice", PASSWORD)
    other = await api.login("alice", PASSWORD)
    second = await refresh_works(api, first["refresh_token"])
    third = await refresh_works(api, second["refresh_token"])
    await access_works(api, third)

    # a thief replays the first refresh token: refused, and the whole session ends
    await refresh_refused(api, first["refresh_token"])
    await refresh_refused(api, third["refresh_token"])
    for tokens in (first, second, third):
        await access_refused(api, tokens["access_token"])
    listed = await list_sessions(api, other["access_token"])
    assert [s["id"] for s in listed] == [other["session_id"]]
    # the user's other session is not touched
    await session_works(api, other)


async def test_logout_racing_a_refresh_leaves_nothing_alive(make_api: Callable[..., Api]) -> None:
    api = make_api(refresh_reuse_grace=0)
    await api.register("alice", PASSWORD)
    outcomes = set()
    for _ in range(10):
        tokens = await api.login("alice", PASSWORD)
        logout, refresh = await asyncio.gather(
            api.request("POST", "/auth/logout", token=tokens["access_token"]),
            api.refresh(tokens["refresh_token"]),
        )
        assert logout.status == 204, logout.text
        assert refresh.status in (200, 401), refresh.text
        outcomes.add(refresh.status)
        await session_refused(api, tokens)
        if refresh.status == 200:
            # whatever the refresh handed out belongs to the ended session: refused too
            await session_refused(api, assert_token_response(refresh))
        else:
            assert_error(refresh, 401, "invalid_grant")
    assert outcomes <= {200, 401}


async def test_a_reuse_whose_redis_step_failed_is_completed_by_the_next_refusal(
    api: Api, redis: Redis
) -> None:
    """The thief rotated on; the victim's old token revokes the session, but that revocation
    never reached Redis: the next refusal of a token of that session publishes it, so the
    thief's access token stops."""
    first = await api.user("alice", PASSWORD)
    second = await refresh_works(api, first["refresh_token"])
    thief = await refresh_works(api, second["refresh_token"])
    await refresh_refused(api, first["refresh_token"])  # reuse: the session ends
    mark = api.app.ctx.revocations.store.session_key(first["session_id"])
    assert await redis.delete(mark) == 1  # as if that Redis write had failed
    await refresh_refused(api, first["refresh_token"])  # the victim's client retries
    assert await redis.exists(mark) == 1
    await access_refused(api, thief["access_token"])


async def test_a_token_an_older_release_rotated_is_refused_without_ending_the_session(
    api: Api, db: Any
) -> None:
    """A rolling upgrade: the previous release rotated A to a random successor, so a retry of
    A can't be answered with the same pair. Refused, and the session lives on."""
    first = await api.user("alice", PASSWORD)
    old_jti = claims(first["refresh_token"])["jti"]
    await db.execute(
        "UPDATE sessions SET previous_jti = $2, current_jti = $3, rotated_at = now() WHERE id = $1",
        uuid.UUID(first["session_id"]),
        old_jti,
        str(uuid.uuid4()),
    )
    await refresh_refused(api, first["refresh_token"])
    row = await db.fetchrow(
        "SELECT revoked_at FROM sessions WHERE id = $1", uuid.UUID(first["session_id"])
    )
    assert row["revoked_at"] is None
    await access_works(api, first)
