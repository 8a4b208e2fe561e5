"""RFC 7009 token revocation: any well-formed request is 200, and a token of ours ends its
session."""

from __future__ import annotations

import time
import uuid

import jwt
from redis.asyncio import Redis

from tests.support import Api
from tests.support.asserts import (
    access_refused,
    assert_error,
    claims,
    session_refused,
    session_works,
)
from tests.support.monitor import RedisCommands

PASSWORD = "correct horse"
DEFAULT_SCOPE = "notes:read notes:write"
FORM = {"content-type": "application/x-www-form-urlencoded"}


# -- POST /auth/revoke (RFC 7009) -------------------------------------------------------


async def test_revoke_refresh_token_by_form_ends_the_session(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    other = await api.login("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/revoke",
        headers=FORM,
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
    )
    assert response.status == 200, response.text
    await session_refused(api, tokens)
    await session_works(api, other)


async def test_revoke_refresh_token_by_json_ends_the_session(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    response = await api.request("POST", "/auth/revoke", json={"token": tokens["refresh_token"]})
    assert response.status == 200, response.text
    await session_refused(api, tokens)


async def test_revoke_access_token_ends_the_session(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    other = await api.login("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/revoke",
        json={"token": tokens["access_token"], "token_type_hint": "access_token"},
    )
    assert response.status == 200, response.text
    await session_refused(api, tokens)
    await session_works(api, other)

    form = await api.login("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/revoke", headers=FORM, data={"token": form["access_token"]}
    )
    assert response.status == 200, response.text
    await session_refused(api, form)


async def test_revoke_tolerates_wrong_or_unknown_hints(api: Api) -> None:
    await api.register("alice", PASSWORD)
    cases = [
        ("refresh_token", "access_token"),  # a refresh token sent as an access token
        ("access_token", "refresh_token"),  # and the other way round
        ("refresh_token", "something_else"),
        ("access_token", ""),
    ]
    for kind, hint in cases:
        tokens = await api.login("alice", PASSWORD)
        response = await api.request(
            "POST",
            "/auth/revoke",
            headers=FORM,
            data={"token": tokens[kind], "token_type_hint": hint},
        )
        assert response.status == 200, (kind, hint, response.text)
        await session_refused(api, tokens)


async def test_revoke_of_garbage_unknown_or_expired_tokens_is_200(api: Api) -> None:
    alice = await api.user("alice", PASSWORD)
    issuer = api.app.ctx.tokens
    unknown_sid = str(uuid.uuid4())
    expired = issuer.issue_access(
        sub=alice["account_id"],
        sid=alice["session_id"],
        scope=DEFAULT_SCOPE,
        username="alice",
        now=int(time.time()) - 100_000,
    ).token
    forged = jwt.encode(
        {**claims(alice["access_token"]), "jti": str(uuid.uuid4())},
        "another secret of at least thirty-two bytes",
        algorithm="HS256",
        headers={"typ": "at+jwt"},
    )
    garbage = [
        "garbage",
        "a.b.c",
        "x" * 5000,  # longer than any token of ours
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0.",
        issuer.issue_access(
            sub=str(uuid.uuid4()), sid=unknown_sid, scope=DEFAULT_SCOPE, username="ghost"
        ).token,
        expired,
        forged,
        " " + alice["refresh_token"][:-3],
    ]
    for token in garbage:
        for hint in (None, "access_token", "refresh_token"):
            body = {"token": token} if hint is None else {"token": token, "token_type_hint": hint}
            response = await api.request("POST", "/auth/revoke", json=body)
            assert response.status == 200, (token[:40], response.text)
        response = await api.request("POST", "/auth/revoke", headers=FORM, data={"token": token})
        assert response.status == 200, (token[:40], response.text)
    # none of them could end alice's session: not even the forged or expired one naming it
    await session_works(api, alice)


async def test_revoke_without_token_is_400_invalid_request(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    assert_error(await api.request("POST", "/auth/revoke", json={}), 400, "invalid_request")
    assert_error(
        await api.request("POST", "/auth/revoke", json={"token_type_hint": "access_token"}),
        400,
        "invalid_request",
    )
    assert_error(
        await api.request(
            "POST", "/auth/revoke", headers=FORM, data={"token_type_hint": "refresh_token"}
        ),
        400,
        "invalid_request",
    )
    assert_error(
        await api.request("POST", "/auth/revoke", json={"token": 12345}), 400, "invalid_request"
    )
    assert_error(
        await api.request("POST", "/auth/revoke", json={"token": None}), 400, "invalid_request"
    )
    assert_error(await api.request("POST", "/auth/revoke"), 400, "invalid_request")
    await session_works(api, tokens)


async def test_revoke_needs_no_authorization_header(api: Api) -> None:
    alice = await api.user("alice", PASSWORD)
    bob = await api.user("bob", PASSWORD)
    # no Authorization header at all
    response = await api.request("POST", "/auth/revoke", json={"token": alice["access_token"]})
    assert response.status == 200, response.text
    assert response.headers.get("www-authenticate") is None
    await session_refused(api, alice)
    # someone else's bearer token in the header does not matter either
    carol = await api.user("carol", PASSWORD)
    response = await api.request(
        "POST", "/auth/revoke", token=carol["access_token"], json={"token": bob["refresh_token"]}
    )
    assert response.status == 200, response.text
    await session_refused(api, bob)
    await session_works(api, carol)


async def test_revoking_an_ended_session_again_publishes_nothing(api: Api) -> None:
    """RFC 7009 needs no authentication: replaying an old token must not make every worker
    do work (a publish, its acknowledgements) each time."""
    tokens = await api.user("alice", PASSWORD)
    events = api.app.ctx.revocations.feed.channels.events
    async with RedisCommands() as log:
        first = await api.request("POST", "/auth/revoke", data={"token": tokens["refresh_token"]})
        assert first.status == 200
        await log.sync()
        assert log.count("SPUBLISH", events) == 1
        for token in [tokens["refresh_token"], tokens["access_token"]] * 5:
            again = await api.request("POST", "/auth/revoke", data={"token": token})
            assert again.status == 200
        await log.sync()
        assert log.count("SPUBLISH", events) == 1, "an ended session was published again"
    await access_refused(api, tokens["access_token"])


async def test_a_revocation_whose_redis_step_was_lost_is_completed_by_a_retry(
    api: Api, redis: Redis
) -> None:
    """Ended in PostgreSQL but not marked in Redis (its Redis step failed): revoking again
    writes the mark, so the access tokens stop."""
    tokens = await api.user("alice", PASSWORD)
    await api.request("POST", "/auth/revoke", data={"token": tokens["refresh_token"]})
    mark = api.app.ctx.revocations.store.session_key(tokens["session_id"])
    assert await redis.delete(mark) == 1
    again = await api.request("POST", "/auth/revoke", data={"token": tokens["refresh_token"]})
    assert again.status == 200
    assert await redis.exists(mark) == 1
