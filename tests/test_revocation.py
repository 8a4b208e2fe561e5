"""Ending sessions as a client sees it: logout, logout everywhere, password change, the
session list, deleting one session, RFC 7009 revocation, admin disable/enable, refresh-token
reuse, and the bounded Redis state these flows leave behind."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import jwt
from redis.asyncio import Redis

from app import passwords
from app.stores import users
from tests.conftest import Api
from tests.support import REDIS_PREFIX, TOKEN_FIELDS

PASSWORD = "correct horse"
NEW_PASSWORD = "battery staple 42"
ADMIN_PASSWORD = "root password 1"
DEFAULT_SCOPE = "notes:read notes:write"
FORM = {"content-type": "application/x-www-form-urlencoded"}
SESSION_FIELDS = {"id", "created_at", "last_used_at", "expires_at", "user_agent", "ip", "current"}


# -- helpers ----------------------------------------------------------------------------


def body_of(response: Any) -> Any:
    return json.loads(response.text) if response.text else None


def assert_error(response: Any, status: int, error: str) -> dict[str, Any]:
    assert response.status == status, response.text
    body: dict[str, Any] = body_of(response)
    assert set(body) == {"error", "error_description"}, body
    assert body["error"] == error, body
    assert isinstance(body["error_description"], str) and body["error_description"]
    return body


def assert_token_response(response: Any) -> dict[str, Any]:
    assert response.status == 200, response.text
    body: dict[str, Any] = response.json
    assert set(body) == TOKEN_FIELDS, body
    assert body["token_type"] == "Bearer"
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("pragma") == "no-cache"
    return body


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def access_works(api: Api, tokens: dict[str, Any]) -> None:
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200, me.text
    assert me.json["session_id"] == tokens["session_id"]


async def access_refused(api: Api, access_token: str) -> None:
    me = await api.request("GET", "/api/me", token=access_token)
    assert_error(me, 401, "invalid_token")
    challenge = me.headers.get("www-authenticate", "")
    assert challenge.startswith('Bearer realm="api"'), challenge
    assert 'error="invalid_token"' in challenge, challenge


async def refresh_works(api: Api, refresh_token: str) -> dict[str, Any]:
    return assert_token_response(await api.refresh(refresh_token))


async def refresh_refused(api: Api, refresh_token: str) -> None:
    assert_error(await api.refresh(refresh_token), 401, "invalid_grant")


async def session_refused(api: Api, tokens: dict[str, Any]) -> None:
    """Neither the access nor the refresh token of this session works any more."""
    await access_refused(api, tokens["access_token"])
    await refresh_refused(api, tokens["refresh_token"])


async def session_works(api: Api, tokens: dict[str, Any]) -> dict[str, Any]:
    """The access token works and the refresh token rotates; the new pair, which works too."""
    await access_works(api, tokens)
    fresh = await refresh_works(api, tokens["refresh_token"])
    assert fresh["session_id"] == tokens["session_id"]
    await access_works(api, fresh)
    return fresh


async def list_sessions(api: Api, access_token: str) -> list[dict[str, Any]]:
    response = await api.request("GET", "/auth/sessions", token=access_token)
    assert response.status == 200, response.text
    assert set(response.json) == {"sessions"}, response.json
    sessions: list[dict[str, Any]] = response.json["sessions"]
    return sessions


def parse_time(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    assert moment.tzinfo is not None, value
    return moment


async def login_response(api: Api, username: str, password: str) -> Any:
    return await api.request(
        "POST", "/auth/login", json={"username": username, "password": password}
    )


async def make_admin(api: Api) -> dict[str, Any]:
    """An account with the admin scope, as `create-user --admin` makes one; logged in."""
    await users.create(
        api.app.ctx.db,
        "root",
        await passwords.hash_password(ADMIN_PASSWORD),
        "notes:read notes:write admin",
    )
    tokens = await api.login("root", ADMIN_PASSWORD)
    assert "admin" in tokens["scope"].split()
    return tokens


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
        issued = claims(fresh["access_token"])["iat"]
        await access_refused(api, tokens["access_token"])
        # the new session works: its access token, and its refresh token
        tokens = await session_works(api, fresh)
        if issued == int(ended_at):
            same_second_seen = True
            break
    assert same_second_seen, "never managed a login in the second of the logout-all"
    # and a logout-all after that still ends it
    response = await api.request("POST", "/auth/logout-all", token=tokens["access_token"])
    assert response.status == 204
    await session_refused(api, tokens)


# -- POST /auth/password ----------------------------------------------------------------


async def change_password(api: Api, token: str, body: Any) -> Any:
    return await api.request("POST", "/auth/password", token=token, json=body)


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


# -- admin: disable and enable ----------------------------------------------------------


async def test_admin_disable_and_enable(api: Api) -> None:
    alice_one = await api.user("alice", PASSWORD)
    alice_two = await api.login("alice", PASSWORD)
    bob = await api.user("bob", PASSWORD)
    admin = await make_admin(api)

    wrong = await login_response(api, "bob", "wrong password")
    unknown = await login_response(api, "nobody", PASSWORD)
    wrong_body = assert_error(wrong, 401, "invalid_grant")
    assert assert_error(unknown, 401, "invalid_grant") == wrong_body

    response = await api.request(
        "POST", "/api/admin/users/alice/disable", token=admin["access_token"]
    )
    assert response.status == 204, response.text
    assert response.text == ""

    # live access tokens refused at once, refresh refused, login refused like a wrong password
    for tokens in (alice_one, alice_two):
        await session_refused(api, tokens)
    disabled = await login_response(api, "alice", PASSWORD)
    assert assert_error(disabled, 401, "invalid_grant") == wrong_body
    token_grant = await api.request(
        "POST",
        "/auth/token",
        headers=FORM,
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert_error(token_grant, 400, "invalid_grant")
    # others untouched
    bob = await session_works(api, bob)
    await access_works(api, admin)

    response = await api.request(
        "POST", "/api/admin/users/alice/enable", token=admin["access_token"]
    )
    assert response.status == 204, response.text
    fresh = await api.login("alice", PASSWORD)
    await session_works(api, fresh)
    # the sessions ended by the disable stay ended
    for tokens in (alice_one, alice_two):
        await access_refused(api, tokens["access_token"])
        await refresh_refused(api, tokens["refresh_token"])


async def test_admin_routes_need_the_admin_scope(api: Api) -> None:
    alice = await api.user("alice", PASSWORD)
    bob = await api.user("bob", PASSWORD)
    await make_admin(api)
    narrowed = await api.login("root", ADMIN_PASSWORD, scope="notes:read notes:write")
    for tokens in (alice, narrowed):
        for action in ("disable", "enable"):
            response = await api.request(
                "POST", f"/api/admin/users/bob/{action}", token=tokens["access_token"]
            )
            assert_error(response, 403, "insufficient_scope")
            challenge = response.headers.get("www-authenticate", "")
            assert challenge.startswith('Bearer realm="api"'), challenge
            assert 'error="insufficient_scope"' in challenge, challenge
            assert 'scope="admin"' in challenge, challenge
    no_token = await api.request("POST", "/api/admin/users/bob/disable")
    assert_error(no_token, 401, "missing_token")
    # bob was not disabled by any of it
    await session_works(api, bob)
    await api.login("bob", PASSWORD)


async def test_admin_unknown_user_is_404(api: Api) -> None:
    admin = await make_admin(api)
    for action in ("disable", "enable"):
        response = await api.request(
            "POST", f"/api/admin/users/nobody/{action}", token=admin["access_token"]
        )
        assert_error(response, 404, "not_found")


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
    # One key is meant to last: the marker that Redis still holds the revocation state. It
    # must go exactly when the data goes (a restart without persistence, a flush), so that
    # the service knows to rebuild it from PostgreSQL; it is a single key, so nothing grows.
    marker = REDIS_PREFIX + "revocations:seeded"
    assert marker in keys
    keys.remove(marker)
    for key in keys:
        ttl = await redis.ttl(key)
        assert ttl > 0, (key, ttl)
        # nothing lives longer than the longest token it could speak of (the refresh token)
        assert ttl <= 7 * 24 * 3600 + 120, (key, ttl)
        assert "eyJ" not in key, key
        for token in seen:
            for part in token.split("."):
                assert part not in key, key
