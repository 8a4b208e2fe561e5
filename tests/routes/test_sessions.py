"""The caller's sessions: listing them, and ending one by id (never another user's)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

from tests.support import Api
from tests.support.asserts import (
    assert_error,
    assert_token_response,
    list_sessions,
    parse_time,
    refresh_works,
    session_refused,
    session_works,
)

PASSWORD = "correct horse"
SESSION_FIELDS = {"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"}


# -- GET /auth/sessions -----------------------------------------------------------------


async def test_sessions_list_shape_order_and_current(api: Api) -> None:
    await api.register("alice", PASSWORD)
    agents = ["Agent-A/1.0", "Agent-B/2.0 (X11)", "Agent-C/3.0"]
    logins = []
    for agent in agents:
        response = await api.request(
            "POST",
            "/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"User-Agent": agent},
        )
        logins.append(assert_token_response(response))
    bob = await api.user("bob", PASSWORD)

    listed = await list_sessions(api, logins[1]["access_token"])
    assert [s["id"] for s in listed] == [t["session_id"] for t in reversed(logins)]
    for entry in listed:
        assert set(entry) == SESSION_FIELDS, entry
        created = parse_time(entry["created_at"])
        last_used = parse_time(entry["last_used_at"])
        expires = parse_time(entry["expires_at"])
        assert last_used >= created
        # the session's absolute limit: SESSION_MAX_AGE (30 days) after the login
        assert abs((expires - created) - timedelta(days=30)) < timedelta(seconds=5)
        assert entry["ip"] is None or isinstance(entry["ip"], str)
        assert isinstance(entry["current"], bool)
    assert [s["user_agent"] for s in listed] == list(reversed(agents))
    assert [s["current"] for s in listed] == [False, True, False]
    created_times = [parse_time(s["created_at"]) for s in listed]
    assert created_times == sorted(created_times, reverse=True)
    assert bob["session_id"] not in {s["id"] for s in listed}

    # the same list seen from another session marks that one as current
    other = await list_sessions(api, logins[2]["access_token"])
    assert [s["current"] for s in other] == [True, False, False]
    bobs = await list_sessions(api, bob["access_token"])
    assert [(s["id"], s["current"]) for s in bobs] == [(bob["session_id"], True)]


async def test_sessions_list_shows_only_active_sessions(api: Api) -> None:
    first = await api.user("alice", PASSWORD)
    second = await api.login("alice", PASSWORD)
    third = await api.login("alice", PASSWORD)
    assert (await api.request("POST", "/auth/logout", token=second["access_token"])).status == 204
    listed = await list_sessions(api, first["access_token"])
    assert [s["id"] for s in listed] == [third["session_id"], first["session_id"]]

    revoked = await api.request("POST", "/auth/revoke", json={"token": third["refresh_token"]})
    assert revoked.status == 200
    listed = await list_sessions(api, first["access_token"])
    assert [s["id"] for s in listed] == [first["session_id"]]
    assert listed[0]["current"] is True


async def test_sessions_last_used_at_moves_on_refresh(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    before = (await list_sessions(api, tokens["access_token"]))[0]
    await asyncio.sleep(0.05)
    rotated = await refresh_works(api, tokens["refresh_token"])
    after = (await list_sessions(api, rotated["access_token"]))[0]
    assert after["id"] == before["id"] == tokens["session_id"]
    assert parse_time(after["last_used_at"]) > parse_time(before["last_used_at"])
    assert after["created_at"] == before["created_at"]
    assert after["expires_at"] == before["expires_at"]
    assert after["current"] is True


# -- DELETE /auth/sessions/{id} ---------------------------------------------------------


async def test_delete_session_ends_that_session_only(api: Api) -> None:
    keep = await api.user("alice", PASSWORD)
    end = await api.login("alice", PASSWORD)
    response = await api.request(
        "DELETE", f"/auth/sessions/{end['session_id']}", token=keep["access_token"]
    )
    assert response.status == 204, response.text
    assert response.text == ""
    await session_refused(api, end)
    keep = await session_works(api, keep)
    assert [s["id"] for s in await list_sessions(api, keep["access_token"])] == [keep["session_id"]]
    # deleting an already-ended session: nothing to end
    again = await api.request(
        "DELETE", f"/auth/sessions/{end['session_id']}", token=keep["access_token"]
    )
    assert_error(again, 404, "not_found")


async def test_delete_own_current_session(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    response = await api.request(
        "DELETE", f"/auth/sessions/{tokens['session_id']}", token=tokens["access_token"]
    )
    assert response.status == 204, response.text
    await session_refused(api, tokens)


async def test_delete_another_users_session_is_404_and_changes_nothing(api: Api) -> None:
    alice = await api.user("alice", PASSWORD)
    bob = await api.user("bob", PASSWORD)
    response = await api.request(
        "DELETE", f"/auth/sessions/{bob['session_id']}", token=alice["access_token"]
    )
    unknown = await api.request(
        "DELETE", f"/auth/sessions/{uuid.uuid4()}", token=alice["access_token"]
    )
    # another user's session is answered exactly like an unknown one
    assert assert_error(response, 404, "not_found") == assert_error(unknown, 404, "not_found")
    await session_works(api, bob)
    await session_works(api, alice)


async def test_delete_session_with_malformed_ids_is_404(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    for bad in ("not-a-uuid", "12345", tokens["session_id"] + "0", "%00", "..%2F..%2Fetc"):
        response = await api.request(
            "DELETE", f"/auth/sessions/{bad}", token=tokens["access_token"]
        )
        assert_error(response, 404, "not_found")
    await session_works(api, tokens)
