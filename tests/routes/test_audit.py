"""The audit trail: each security event recorded once, with the right user, session, actor and
request id; read by its user (GET /auth/events) and by an admin; never a token or password."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from app.accounts.admin import AccountAdmin
from tests.support import ADMIN_PASSWORD, Api
from tests.support.asserts import assert_error, login_response, make_admin

PASSWORD = "correct horse"
FORM = {"content-type": "application/x-www-form-urlencoded"}


async def events_of(api: Api, token: str, **params: Any) -> list[dict[str, Any]]:
    response = await api.request("GET", "/auth/events", token=token, params=params)
    assert response.status == 200, response.text
    assert set(response.json) == {"events", "next_cursor"}
    events: list[dict[str, Any]] = response.json["events"]
    return events


def types(events: list[dict[str, Any]]) -> list[str]:
    return [event["type"] for event in events]


async def test_login_refresh_and_logout_are_recorded_with_their_request_ids(api: Api) -> None:
    await api.register("alice", PASSWORD)
    login = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD},
        headers={"X-Request-ID": "login-1", "User-Agent": "audit-test/1"},
    )
    assert login.status == 200 and login.headers["x-request-id"] == "login-1"
    tokens = login.json
    refreshed = await api.request(
        "POST",
        "/auth/refresh",
        json={"refresh_token": tokens["refresh_token"]},
        headers={"X-Request-ID": "refresh-1"},
    )
    assert refreshed.status == 200
    # a retry of the same token gets the same pair and records nothing more
    again = await api.refresh(tokens["refresh_token"])
    assert again.status == 200 and again.json == refreshed.json
    access = refreshed.json["access_token"]
    events = await events_of(api, access)
    assert types(events) == ["refresh", "login"]  # newest first
    refresh_event, login_event = events
    assert login_event["request_id"] == "login-1"
    assert login_event["user_agent"] == "audit-test/1"
    assert login_event["session_id"] == tokens["session_id"]
    assert refresh_event["request_id"] == "refresh-1"
    assert refresh_event["session_id"] == tokens["session_id"]
    assert all(event["actor"] is None for event in events)

    logout = await api.request(
        "POST", "/auth/logout", token=access, headers={"X-Request-ID": "logout-1"}
    )
    assert logout.status == 204
    relogin = await api.login("alice", PASSWORD)
    events = await events_of(api, relogin["access_token"])
    assert types(events) == ["login", "logout", "refresh", "login"]
    assert events[1]["request_id"] == "logout-1"
    assert events[1]["session_id"] == tokens["session_id"]


async def test_a_generated_request_id_is_echoed_and_recorded(api: Api) -> None:
    await api.register("alice", PASSWORD)
    login = await login_response(api, "alice", PASSWORD)
    generated = login.headers["x-request-id"]
    assert len(generated) == 32
    # an id that is no id (too long, odd characters) is replaced, not echoed
    odd = await api.request("GET", "/health/live", headers={"X-Request-ID": "a b" * 60})
    assert odd.headers["x-request-id"] != "a b" * 60 and len(odd.headers["x-request-id"]) == 32
    events = await events_of(api, login.json["access_token"])
    assert events[0]["request_id"] == generated


async def test_failed_logins_are_recorded_with_their_reason(
    api: Api, db: asyncpg.Connection
) -> None:
    await api.register("alice", PASSWORD)
    assert (await login_response(api, "alice", "wrong password")).status == 401
    assert (await login_response(api, "nobody", "my secret password")).status == 401
    tokens = await api.login("alice", PASSWORD)
    events = await events_of(api, tokens["access_token"])
    assert types(events) == ["login", "login_failed"]
    assert events[1]["detail"] == {"reason": "wrong_password"}
    # the unknown name is in the trail without its name (it may be a password typed there)
    unknown = await db.fetch("SELECT * FROM events WHERE user_id IS NULL")
    assert len(unknown) == 1
    assert json.loads(unknown[0]["detail"]) == {"reason": "unknown_user"}
    assert "nobody" not in str(dict(unknown[0]))


async def test_a_flood_of_refused_logins_records_its_first_refusal_only(api: Api) -> None:
    await api.register("alice", PASSWORD)
    statuses = [(await login_response(api, "alice", "wrong password")).status for _ in range(14)]
    assert statuses == [401] * 10 + [429] * 4
    admin = await make_admin(api)
    response = await api.request(
        "GET", "/api/admin/users/alice/events", token=admin["access_token"]
    )
    assert response.status == 200
    reasons = [event["detail"]["reason"] for event in response.json["events"]]
    assert reasons == ["rate_limited"] + ["wrong_password"] * 10


async def test_reuse_is_recorded_with_the_session_it_revoked(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    other = await api.login("alice", PASSWORD)
    first = await api.refresh(tokens["refresh_token"])
    second = await api.refresh(first.json["refresh_token"])
    assert second.status == 200
    reused = await api.refresh(tokens["refresh_token"])
    assert reused.status == 401
    events = await events_of(api, other["access_token"])
    assert types(events)[0] == "refresh_reuse"
    assert events[0]["session_id"] == tokens["session_id"]
    # refused again later: the session is already revoked, nothing more is recorded
    assert (await api.refresh(tokens["refresh_token"])).status == 401
    assert types(await events_of(api, other["access_token"])).count("refresh_reuse") == 1


async def test_sessions_ended_revoked_and_logged_out_everywhere(api: Api) -> None:
    one = await api.user("alice", PASSWORD)
    two = await api.login("alice", PASSWORD)
    three = await api.login("alice", PASSWORD)
    ended = await api.request(
        "DELETE", f"/auth/sessions/{two['session_id']}", token=one["access_token"]
    )
    assert ended.status == 204
    revoked = await api.request(
        "POST", "/auth/revoke", data={"token": three["refresh_token"]}, headers=FORM
    )
    assert revoked.status == 200
    # revoking it again changes nothing and records nothing
    await api.request("POST", "/auth/revoke", data={"token": three["refresh_token"]}, headers=FORM)
    events = await events_of(api, one["access_token"])
    assert types(events)[:2] == ["token_revoked", "session_ended"]
    assert events[0]["session_id"] == three["session_id"]
    assert events[1]["session_id"] == two["session_id"]
    everywhere = await api.request("POST", "/auth/logout-all", token=one["access_token"])
    assert everywhere.status == 204
    fresh = await api.login("alice", PASSWORD)
    events = await events_of(api, fresh["access_token"])
    assert types(events)[:2] == ["login", "logout_all"]
    assert events[1]["detail"] == {"sessions_ended": 1}


async def test_a_password_change_is_recorded_with_its_new_session(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    wrong = await api.request(
        "POST",
        "/auth/password",
        token=tokens["access_token"],
        json={"current_password": "not it at all", "new_password": "another horse"},
    )
    assert wrong.status == 403
    changed = await api.request(
        "POST",
        "/auth/password",
        token=tokens["access_token"],
        json={"current_password": PASSWORD, "new_password": "another horse"},
        headers={"X-Request-ID": "change-1"},
    )
    assert changed.status == 200
    events = await events_of(api, changed.json["access_token"])
    assert types(events)[:2] == ["password_changed", "password_change_failed"]
    assert events[0]["session_id"] == changed.json["session_id"]
    assert events[0]["request_id"] == "change-1"
    assert events[0]["detail"] == {"sessions_ended": 1}


async def test_disable_enable_and_scope_changes_name_the_admin(api: Api) -> None:
    await api.register("alice", PASSWORD)
    admin = await make_admin(api, ADMIN_PASSWORD)
    root = admin["access_token"]
    for action in ("disable", "enable"):
        response = await api.request(
            "POST",
            f"/api/admin/users/alice/{action}",
            token=root,
            headers={"X-Request-ID": f"{action}-1"},
        )
        assert response.status == 204
    # the command line's scope change: no admin account acted, so no actor
    admin_flows: AccountAdmin = api.app.ctx.accounts.admin
    await admin_flows.set_scope("alice", "notes:read")
    response = await api.request("GET", "/api/admin/users/alice/events", token=root)
    assert response.status == 200
    events = response.json["events"]
    assert types(events) == ["scope_changed", "account_enabled", "account_disabled"]
    assert events[0]["actor"] is None
    assert events[0]["detail"] == {"before": "notes:read notes:write", "after": "notes:read"}
    assert [event["actor"] for event in events[1:]] == ["root", "root"]
    assert [event["request_id"] for event in events[1:]] == ["enable-1", "disable-1"]


async def test_admin_events_need_the_admin_scope_and_a_known_user(api: Api) -> None:
    alice = await api.user("alice", PASSWORD)
    refused = await api.request("GET", "/api/admin/users/alice/events", token=alice["access_token"])
    assert_error(refused, 403, "insufficient_scope")
    admin = await make_admin(api)
    missing = await api.request(
        "GET", "/api/admin/users/nobody/events", token=admin["access_token"]
    )
    assert_error(missing, 404, "not_found")
    anonymous = await api.request("GET", "/auth/events")
    assert_error(anonymous, 401, "missing_token")


async def test_no_token_or_password_is_ever_in_an_event(api: Api, db: asyncpg.Connection) -> None:
    tokens = await api.user("alice", PASSWORD)
    await login_response(api, "alice", "a wrong password")
    refreshed = (await api.refresh(tokens["refresh_token"])).json
    await api.refresh(tokens["refresh_token"])
    await api.request(
        "POST",
        "/auth/password",
        token=refreshed["access_token"],
        json={"current_password": PASSWORD, "new_password": "another horse"},
    )
    await api.request(
        "POST", "/auth/revoke", data={"token": refreshed["refresh_token"]}, headers=FORM
    )
    rows = await db.fetch("SELECT * FROM events")
    assert len(rows) >= 4
    text = json.dumps([dict(row) for row in rows], default=str)
    secrets = [PASSWORD, "a wrong password", "another horse"]
    secrets += [
        t for pair in (tokens, refreshed) for t in (pair["access_token"], pair["refresh_token"])
    ]
    for secret in secrets:
        assert secret not in text
        # nor any of its JWT parts (a header alone is not secret; signatures and claims are)
        for part in secret.split(".")[1:]:
            assert part not in text


async def test_every_answer_carries_its_request_id(api: Api) -> None:
    for method, path in (("GET", "/nope"), ("DELETE", "/health/live"), ("GET", "/api/me")):
        given = await api.request(method, path, headers={"X-Request-ID": f"id-{method}"})
        assert given.status in (401, 404, 405), given.text
        assert given.headers["x-request-id"] == f"id-{method}"
        made = await api.request(method, path)
        assert len(made.headers["x-request-id"]) == 32
    ids = {(await api.request("GET", "/health/live")).headers["x-request-id"] for _ in range(20)}
    assert len(ids) == 20
