"""Refresh-token reuse ends the session; a logout racing a refresh leaves nothing alive."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.support import Api
from tests.support.asserts import (
    access_refused,
    access_works,
    assert_error,
    assert_token_response,
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
