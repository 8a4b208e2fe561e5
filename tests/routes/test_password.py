"""Changing the password: policy, a wrong current password, and every earlier session ending."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from tests.support import Api
from tests.support.asserts import (
    access_refused,
    assert_error,
    assert_token_response,
    change_password,
    list_sessions,
    login_response,
    refresh_works,
    session_refused,
    session_works,
)

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple 42"
DEFAULT_SCOPE = "notes:read notes:write"


# -- POST /auth/password ----------------------------------------------------------------


async def test_password_change_with_wrong_current_password_is_403(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    response = await change_password(
        api,
        tokens["access_token"],
        {"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert_error(response, 403, "wrong_password")
    # nothing changed: the session lives on, the old password still logs in, the new does not
    await session_works(api, tokens)
    await api.login("alice", PASSWORD)
    assert_error(await login_response(api, "alice", NEW_PASSWORD), 401, "invalid_grant")


async def test_password_change_policy_violations_are_400(api: Api) -> None:
    tokens = await api.user("alexander", PASSWORD)
    for new in ("short12", "alexander", "x" * 129, ""):
        response = await change_password(
            api, tokens["access_token"], {"current_password": PASSWORD, "new_password": new}
        )
        assert_error(response, 400, "invalid_request")
    # nothing changed
    tokens = await session_works(api, tokens)
    await api.login("alexander", PASSWORD)
    assert_error(await login_response(api, "alexander", "alexander"), 401, "invalid_grant")
    assert_error(await login_response(api, "alexander", "short12"), 401, "invalid_grant")


async def test_password_change_with_missing_or_wrong_fields_is_400(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    bodies: list[Any] = [
        {},
        {"current_password": PASSWORD},
        {"new_password": NEW_PASSWORD},
        {"current_password": PASSWORD, "new_password": None},
        {"current_password": PASSWORD, "new_password": 12345678},
        {"current_password": ["x"], "new_password": NEW_PASSWORD},
        [PASSWORD, NEW_PASSWORD],
    ]
    for body in bodies:
        response = await change_password(api, tokens["access_token"], body)
        assert_error(response, 400, "invalid_request")
    malformed = await api.request(
        "POST",
        "/auth/password",
        token=tokens["access_token"],
        content=b'{"current_password": ',
        headers={"content-type": "application/json"},
    )
    assert_error(malformed, 400, "invalid_request")
    await session_works(api, tokens)


async def test_password_change_ends_every_session_and_starts_a_new_one(
    api: Api, db: asyncpg.Connection
) -> None:
    first = await api.user("alice", PASSWORD)
    second = await api.login("alice", PASSWORD)
    second_rotated = await refresh_works(api, second["refresh_token"])
    before = datetime.now(UTC)

    response = await change_password(
        api, first["access_token"], {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    )
    changed = assert_token_response(response)
    assert changed["session_id"] not in {first["session_id"], second["session_id"]}
    assert changed["account_id"] == first["account_id"]
    assert changed["scope"] == DEFAULT_SCOPE

    # every earlier session and token is dead
    await session_refused(api, first)
    await access_refused(api, second["access_token"])
    await session_refused(api, second_rotated)
    # the new session works, and is the only one
    rotated = await session_works(api, changed)
    listed = await list_sessions(api, rotated["access_token"])
    assert [s["id"] for s in listed] == [changed["session_id"]]
    # the old password no longer logs in, the new one does
    assert_error(await login_response(api, "alice", PASSWORD), 401, "invalid_grant")
    await session_works(api, await api.login("alice", NEW_PASSWORD))

    valid_after = await db.fetchval("SELECT tokens_valid_after FROM users WHERE username = 'alice'")
    assert valid_after is not None
    assert before - timedelta(seconds=2) <= valid_after <= datetime.now(UTC) + timedelta(seconds=1)


async def test_password_change_accepts_8_and_128_characters(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    for new in ("8 chars!", "p" * 128):
        current = PASSWORD if new == "8 chars!" else "8 chars!"
        response = await change_password(
            api, tokens["access_token"], {"current_password": current, "new_password": new}
        )
        tokens = assert_token_response(response)
    await api.login("alice", "p" * 128)
