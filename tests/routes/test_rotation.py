"""Refresh-token rotation and reuse, as the contract's "Refresh-token rotation and reuse"
section states it: one refresh per token, reuse ends the session, exactly one winner of a
race, a session whose absolute end never moves, and a used mark that never burns a token
by itself."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.stores.refresh_marks import lifetime
from tests.support import REDIS_PREFIX, TOKEN_FIELDS, Api
from tests.support.asserts import assert_error, assert_token_response, claims

PASSWORD = "correct horse"


async def me_status(api: Api, access_token: str) -> int:
    status: int = (await api.request("GET", "/api/me", token=access_token)).status
    return status


async def assert_session_dead(api: Api, access_tokens: list[str], refresh_token: str) -> None:
    for access in access_tokens:
        response = await api.request("GET", "/api/me", token=access)
        assert response.status == 401, response.text
        assert response.json["error"] == "invalid_token"
    assert_error(await api.refresh(refresh_token), 401, "invalid_grant")


async def session_row(db: asyncpg.Connection, sid: str) -> asyncpg.Record:
    row = await db.fetchrow("SELECT * FROM sessions WHERE id = $1", sid)
    assert row is not None
    return row


async def burst(api: Api, calls: list[tuple[str, dict[str, Any]]]) -> list[httpx.Response]:
    """POST all `calls` at once through a plain ASGI client on the app the test already uses.

    sanic-testing's client re-runs the app's startup (~50 ms of CPU) around every request, so
    25 of its requests at once starve the event loop for seconds (and time out connections)
    in a way no server does; a plain ASGI client sends the burst as a server would see it.
    """
    await api.request("GET", "/health/live")  # the app is started (routes finalised)
    transport = httpx.ASGITransport(app=api.app, client=("127.0.0.1", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
        return list(await asyncio.gather(*(client.post(path, **kw) for path, kw in calls)))


def refresh_call(refresh_token: str) -> tuple[str, dict[str, Any]]:
    return "/auth/refresh", {"json": {"refresh_token": refresh_token}}


# -- rotation ---------------------------------------------------------------------------


async def test_refresh_rotates_both_tokens_in_the_same_session(api: Api) -> None:
    first = await api.user()
    second = assert_token_response(await api.refresh(first["refresh_token"]))
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert second["session_id"] == first["session_id"]
    assert second["account_id"] == first["account_id"]
    assert second["scope"] == first["scope"]
    assert second["token_type"] == "Bearer" and second["expires_in"] == 600
    assert claims(second["refresh_token"])["jti"] != claims(first["refresh_token"])["jti"]
    me = await api.request("GET", "/api/me", token=second["access_token"])
    assert me.status == 200
    assert me.json["session_id"] == first["session_id"]
    third = assert_token_response(await api.refresh(second["refresh_token"]))
    assert third["session_id"] == first["session_id"]
    assert len({first["refresh_token"], second["refresh_token"], third["refresh_token"]}) == 3


async def test_a_retry_within_the_grace_gets_the_same_pair(api: Api) -> None:
    """A response lost after the rotation: the client retries with the token it still holds
    and gets that token's one successor again, the very same bytes."""
    first = await api.user()
    second = assert_token_response(await api.refresh(first["refresh_token"]))
    for _ in range(2):
        again = assert_token_response(await api.refresh(first["refresh_token"]))
        assert again["access_token"] == second["access_token"]
        assert again["refresh_token"] == second["refresh_token"]
        assert again["session_id"] == first["session_id"]
    assert await me_status(api, first["access_token"]) == 200
    assert await me_status(api, second["access_token"]) == 200
    third = assert_token_response(await api.refresh(second["refresh_token"]))
    assert third["session_id"] == first["session_id"]
    assert await me_status(api, third["access_token"]) == 200


async def test_a_retry_counts_the_lifetimes_down(api: Api) -> None:
    first = await api.user()
    second = assert_token_response(await api.refresh(first["refresh_token"]))
    await asyncio.sleep(2.1)
    again = assert_token_response(await api.refresh(first["refresh_token"]))
    assert again["refresh_token"] == second["refresh_token"]
    assert again["expires_in"] <= second["expires_in"] - 2
    assert again["refresh_expires_in"] <= second["refresh_expires_in"] - 2
    left = claims(again["access_token"])["exp"] - time.time()
    assert abs(left - again["expires_in"]) <= 1.5


async def test_once_the_successor_was_used_the_parent_is_reuse(
    api: Api, db: asyncpg.Connection
) -> None:
    first = await api.user()
    second = assert_token_response(await api.refresh(first["refresh_token"]))
    third = assert_token_response(await api.refresh(second["refresh_token"]))
    # within the grace, yet its successor was used: theft
    assert_error(await api.refresh(first["refresh_token"]), 401, "invalid_grant")
    await assert_session_dead(
        api,
        [first["access_token"], second["access_token"], third["access_token"]],
        third["refresh_token"],
    )
    assert (await session_row(db, first["session_id"]))["revoked_reason"] == "refresh_token_reuse"


async def test_a_retry_of_a_narrowed_refresh_gets_the_narrowed_pair(api: Api) -> None:
    tokens = await api.user()
    form = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    narrowed = await api.request("POST", "/auth/token", data={**form, "scope": "notes:read"})
    pair = assert_token_response(narrowed)
    assert pair["scope"] == "notes:read"
    retried = assert_token_response(await api.request("POST", "/auth/token", data=form))
    assert retried["access_token"] == pair["access_token"]
    assert retried["scope"] == "notes:read"


async def test_narrowed_scope_survives_refresh(api: Api) -> None:
    await api.register()
    tokens = await api.login(scope="notes:read")
    refreshed = assert_token_response(await api.refresh(tokens["refresh_token"]))
    assert refreshed["scope"] == "notes:read"
    assert claims(refreshed["access_token"])["scope"] == "notes:read"
    denied = await api.request(
        "POST", "/api/notes", token=refreshed["access_token"], json={"title": "t", "body": ""}
    )
    assert denied.status == 403


# -- reuse ------------------------------------------------------------------------------


async def test_reuse_outside_grace_revokes_the_session(
    make_api: Callable[..., Api], db: asyncpg.Connection
) -> None:
    api = make_api(refresh_reuse_grace=0)
    first = await api.user()
    second = assert_token_response(await api.refresh(first["refresh_token"]))
    await asyncio.sleep(0.05)
    assert_error(await api.refresh(first["refresh_token"]), 401, "invalid_grant")
    await assert_session_dead(
        api, [first["access_token"], second["access_token"]], second["refresh_token"]
    )
    row = await session_row(db, first["session_id"])
    assert row["revoked_at"] is not None
    # a new login still works: only the session ended, not the account
    fresh = await api.login()
    assert await me_status(api, fresh["access_token"]) == 200


async def test_reuse_through_the_token_endpoint_revokes_the_session(
    make_api: Callable[..., Api],
) -> None:
    api = make_api(refresh_reuse_grace=0)
    first = await api.user()
    second = assert_token_response(await api.refresh(first["refresh_token"]))
    await asyncio.sleep(0.05)
    response = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert_error(response, 400, "invalid_grant")
    await assert_session_dead(
        api, [first["access_token"], second["access_token"]], second["refresh_token"]
    )


async def test_older_token_within_grace_is_reuse(api: Api) -> None:
    """Only the immediately previous token is a benign race; an older one is theft."""
    first = await api.user()
    second = assert_token_response(await api.refresh(first["refresh_token"]))
    third = assert_token_response(await api.refresh(second["refresh_token"]))
    assert_error(await api.refresh(first["refresh_token"]), 401, "invalid_grant")
    await assert_session_dead(
        api,
        [first["access_token"], second["access_token"], third["access_token"]],
        third["refresh_token"],
    )


async def test_reuse_leaves_other_sessions_alone(make_api: Callable[..., Api]) -> None:
    api = make_api(refresh_reuse_grace=0)
    stolen = await api.user("alice")
    other = await api.login("alice")
    bob = await api.user("bob")
    newest = assert_token_response(await api.refresh(stolen["refresh_token"]))
    await asyncio.sleep(0.05)
    assert_error(await api.refresh(stolen["refresh_token"]), 401, "invalid_grant")
    await assert_session_dead(api, [newest["access_token"]], newest["refresh_token"])
    for tokens in (other, bob):
        assert await me_status(api, tokens["access_token"]) == 200
        rotated = assert_token_response(await api.refresh(tokens["refresh_token"]))
        assert rotated["session_id"] == tokens["session_id"]
        assert await me_status(api, rotated["access_token"]) == 200


async def test_access_token_is_no_refresh_token(api: Api) -> None:
    tokens = await api.user()
    assert_error(await api.refresh(tokens["access_token"]), 401, "invalid_grant")
    response = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["access_token"]},
    )
    assert_error(response, 400, "invalid_grant")
    # nothing was spent or revoked by the mistake
    assert await me_status(api, tokens["access_token"]) == 200
    assert_token_response(await api.refresh(tokens["refresh_token"]))


async def test_garbage_refresh_tokens_are_401(api: Api) -> None:
    tokens = await api.user()
    for garbage in [
        "garbage",
        "a.b.c",
        "eyJhbGciOiJIUzI1NiJ9.e30.",
        tokens["refresh_token"] + "x",
        tokens["refresh_token"].split(".")[0],
        " ",
    ]:
        assert_error(await api.refresh(garbage), 401, "invalid_grant")
    assert_token_response(await api.refresh(tokens["refresh_token"]))


# -- races ------------------------------------------------------------------------------


async def test_concurrent_refreshes_all_get_the_one_successor(
    api: Api, db: asyncpg.Connection
) -> None:
    tokens = await api.user()
    answers = await burst(api, [refresh_call(tokens["refresh_token"])] * 25)
    assert Counter(answer.status_code for answer in answers) == {200: 25}, [
        a.text for a in answers if a.status_code != 200
    ]
    pairs = {(a.json()["access_token"], a.json()["refresh_token"]) for a in answers}
    assert len(pairs) == 1, "more than one successor was minted"
    winner = answers[0].json()
    assert set(winner) == TOKEN_FIELDS
    assert winner["session_id"] == tokens["session_id"]
    row = await session_row(db, tokens["session_id"])
    assert row["previous_jti"] == claims(tokens["refresh_token"])["jti"]
    assert row["current_jti"] == claims(winner["refresh_token"])["jti"]
    assert await me_status(api, winner["access_token"]) == 200
    after = assert_token_response(await api.refresh(winner["refresh_token"]))
    assert after["session_id"] == tokens["session_id"]


async def test_concurrent_refreshes_mixed_routes_get_the_one_successor(api: Api) -> None:
    tokens = await api.user()
    rt = tokens["refresh_token"]
    token_call = ("/auth/token", {"data": {"grant_type": "refresh_token", "refresh_token": rt}})
    answers = await burst(api, [refresh_call(rt), token_call] * 10)
    assert [answer.status_code for answer in answers] == [200] * 20, [a.text for a in answers]
    assert len({answer.json()["refresh_token"] for answer in answers}) == 1
    assert_token_response(await api.refresh(answers[0].json()["refresh_token"]))


# -- absolute session lifetime -----------------------------------------------------------


async def test_session_expiry_never_moves(api: Api, db: asyncpg.Connection) -> None:
    tokens = await api.user()
    before = await session_row(db, tokens["session_id"])
    expires_at = before["expires_at"]
    age = (expires_at - before["created_at"]).total_seconds()
    assert abs(age - 2592000) < 5  # SESSION_MAX_AGE default: 30 days
    assert tokens["refresh_expires_in"] == 604800
    rt = tokens["refresh_token"]
    for _ in range(3):
        await asyncio.sleep(1.05)  # a new second: a sliding expiry would show
        fresh = assert_token_response(await api.refresh(rt))
        assert fresh["refresh_expires_in"] == 604800
        rt = fresh["refresh_token"]
        assert (await session_row(db, tokens["session_id"]))["expires_at"] == expires_at


async def test_refresh_token_never_outlives_the_session(
    make_api: Callable[..., Api], db: asyncpg.Connection
) -> None:
    api = make_api(session_max_age=6, refresh_token_ttl=6)
    tokens = await api.user()
    expires_at = (await session_row(db, tokens["session_id"]))["expires_at"]
    end = expires_at.timestamp()
    assert tokens["refresh_expires_in"] == 6
    assert claims(tokens["refresh_token"])["exp"] <= end
    rt = tokens["refresh_token"]
    for _ in range(2):
        await asyncio.sleep(1.1)
        asked_at = int(time.time())
        fresh = assert_token_response(await api.refresh(rt))
        rt = fresh["refresh_token"]
        payload = claims(rt)
        # the session's end caps the refresh token: less than REFRESH_TOKEN_TTL is left
        assert fresh["refresh_expires_in"] < 6
        assert fresh["refresh_expires_in"] <= end - asked_at
        assert payload["exp"] <= end
        assert fresh["refresh_expires_in"] == payload["exp"] - payload["iat"]
        assert (await session_row(db, tokens["session_id"]))["expires_at"] == expires_at


async def test_refresh_after_the_session_max_age_is_refused(
    make_api: Callable[..., Api], db: asyncpg.Connection
) -> None:
    api = make_api(session_max_age=3, refresh_token_ttl=3)
    tokens = await api.user()
    first = assert_token_response(await api.refresh(tokens["refresh_token"]))
    end = (await session_row(db, tokens["session_id"]))["expires_at"].timestamp()
    await asyncio.sleep(max(0.0, end - time.time()) + 0.3)
    assert_error(await api.refresh(first["refresh_token"]), 401, "invalid_grant")
    response = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    assert_error(response, 400, "invalid_grant")
    # logging in again starts a new session with a new absolute limit
    again = await api.login()
    assert again["session_id"] != tokens["session_id"]
    assert_token_response(await api.refresh(again["refresh_token"]))


# -- the Redis used mark ----------------------------------------------------------------


async def test_used_mark_is_keyed_by_jti_never_by_token(api: Api, redis: Redis) -> None:
    tokens = await api.user()
    jti = claims(tokens["refresh_token"])["jti"]
    fresh = assert_token_response(await api.refresh(tokens["refresh_token"]))
    keys = [key async for key in redis.scan_iter(match=REDIS_PREFIX + "*")]
    marked = [key for key in keys if jti in key]
    assert marked, keys
    assert f"{REDIS_PREFIX}used:{jti}" in marked
    ttl = await redis.ttl(f"{REDIS_PREFIX}used:{jti}")
    # kept while a race or a retry may still come (the grace plus a minute), not 7 days
    assert 0 < ttl <= lifetime(tokens["refresh_expires_in"], Settings.refresh_reuse_grace)
    assert ttl < tokens["refresh_expires_in"]
    secrets = [
        tokens["refresh_token"],
        fresh["refresh_token"],
        tokens["access_token"],
        fresh["access_token"],
    ]
    signatures = [token.rsplit(".", 1)[1] for token in secrets]
    for key in keys:
        assert not any(part in key for part in secrets + signatures), key
        value = await redis.get(key) if await redis.type(key) == "string" else ""
        assert not any(part in (value or "") for part in secrets + signatures), key


@pytest.mark.parametrize("age", [3600.0, 0.0])
async def test_a_leftover_used_mark_never_burns_the_token(
    api: Api, redis: Redis, db: asyncpg.Connection, age: float
) -> None:
    """A refresh that failed half-way (or is still running somewhere) left its mark: the
    token still rotates, at once, to its one successor, and the session is never revoked."""
    tokens = await api.user()
    jti = claims(tokens["refresh_token"])["jti"]
    await redis.set(f"{REDIS_PREFIX}used:{jti}", repr(time.time() - age), ex=600)
    started = time.monotonic()
    fresh = assert_token_response(await api.refresh(tokens["refresh_token"]))
    assert time.monotonic() - started < 2.0  # nobody is waited for
    assert fresh["session_id"] == tokens["session_id"]
    row = await session_row(db, tokens["session_id"])
    assert row["revoked_at"] is None
    assert row["current_jti"] == claims(fresh["refresh_token"])["jti"]
    again = assert_token_response(await api.refresh(tokens["refresh_token"]))
    assert again["refresh_token"] == fresh["refresh_token"]
    assert await me_status(api, fresh["access_token"]) == 200
    assert_token_response(await api.refresh(fresh["refresh_token"]))


async def test_a_leftover_used_mark_and_a_race_still_mint_one_successor(
    api: Api, redis: Redis
) -> None:
    tokens = await api.user()
    jti = claims(tokens["refresh_token"])["jti"]
    await redis.set(f"{REDIS_PREFIX}used:{jti}", repr(time.time() - 3600), ex=600)
    answers = await burst(api, [refresh_call(tokens["refresh_token"])] * 10)
    assert Counter(answer.status_code for answer in answers) == {200: 10}
    assert len({answer.json()["refresh_token"] for answer in answers}) == 1
    assert_token_response(await api.refresh(answers[0].json()["refresh_token"]))
