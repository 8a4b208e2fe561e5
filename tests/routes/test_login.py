"""POST /auth/login as a client sees it: the token response, one session per login, the same
answer for every wrong credential, scope narrowing."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from app import passwords
from tests.support import DEFAULT_SCOPE, Api
from tests.support.asserts import assert_default_token_response, assert_error, claims

PASSWORD = "correct horse"
JSON = {"content-type": "application/json"}


# -- /auth/login ------------------------------------------------------------------------


async def test_login_answers_the_token_response(api: Api) -> None:
    account = await api.register("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    body = assert_default_token_response(response)
    assert body["account_id"] == account["id"]
    access, refresh = claims(body["access_token"]), claims(body["refresh_token"])
    assert access["sub"] == refresh["sub"] == account["id"]
    assert access["sid"] == refresh["sid"] == body["session_id"]
    me = await api.request("GET", "/api/me", token=body["access_token"])
    assert me.status == 200
    assert me.json == {
        "id": account["id"],
        "username": "alice",
        "scope": DEFAULT_SCOPE,
        "session_id": body["session_id"],
    }


async def test_each_login_starts_its_own_session(api: Api) -> None:
    first = await api.user("alice", PASSWORD)
    second = await api.login("alice", PASSWORD)
    assert first["session_id"] != second["session_id"]
    assert first["account_id"] == second["account_id"]
    assert first["refresh_token"] != second["refresh_token"]


async def test_unknown_user_and_wrong_password_answer_the_same(api: Api, db: Any) -> None:
    await api.register("alice", PASSWORD)
    await api.register("carol", PASSWORD)
    await db.execute("UPDATE users SET disabled_at = now() WHERE username = 'carol'")
    answers = [
        await api.request("POST", "/auth/login", json={"username": u, "password": p})
        for u, p in [
            ("nobody", PASSWORD),
            ("alice", "wrong password"),
            ("alice", PASSWORD.upper()),
            ("carol", PASSWORD),  # disabled
        ]
    ]
    bodies = [assert_error(answer, 401, "invalid_grant") for answer in answers]
    assert all(body == bodies[0] for body in bodies), bodies
    assert all("access_token" not in answer.text for answer in answers)


async def test_login_narrows_the_scope(api: Api) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD, "scope": "notes:read"},
    )
    body = assert_default_token_response(response, scope="notes:read")
    assert claims(body["access_token"])["scope"] == "notes:read"
    token = body["access_token"]
    assert (await api.request("GET", "/api/me", token=token)).json["scope"] == "notes:read"
    assert (await api.request("GET", "/api/notes", token=token)).status == 200
    denied = await api.request("POST", "/api/notes", token=token, json={"title": "t", "body": ""})
    assert_error(denied, 403, "insufficient_scope")


@pytest.mark.parametrize(
    "scope", ["admin", "notes:delete", "notes:read admin", "openid", "NOTES:READ"]
)
async def test_login_refuses_scope_beyond_the_account(api: Api, scope: str) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/login", json={"username": "alice", "password": PASSWORD, "scope": scope}
    )
    assert_error(response, 400, "invalid_scope")
    assert "access_token" not in response.text


async def test_login_with_scope_of_wrong_type_is_invalid_request(api: Api) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD, "scope": ["notes:read"]},
    )
    assert_error(response, 400, "invalid_request")


async def test_overlong_password_is_refused_without_hashing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.register("alice", PASSWORD)
    checked: list[int] = []
    real_verify = passwords._verify

    def counting_verify(password_hash: str | None, password: str) -> tuple[bool, bool]:
        checked.append(len(password))
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "_verify", counting_verify)
    for path, body in [
        ("/auth/login", {"json": {"username": "alice", "password": "x" * 129}}),
        ("/auth/login", {"json": {"username": "nobody", "password": "x" * 60_000}}),
        (
            "/auth/token",
            {"data": {"grant_type": "password", "username": "alice", "password": "y" * 129}},
        ),
    ]:
        assert_error(await api.request("POST", path, **body), 400, "invalid_request")
    assert checked == []
    # the spy does see a password that is checked
    wrong = await api.request(
        "POST", "/auth/login", json={"username": "alice", "password": "z" * 128}
    )
    assert_error(wrong, 401, "invalid_grant")
    assert checked == [128]


# -- crafted input: the dummy hash's password, look-alike names, a clock ahead ----------------


async def test_the_dummy_hashs_own_password_is_just_a_wrong_password(api: Api) -> None:
    """Unknown users are checked against a dummy hash; its own password must not make a
    difference (it gave a 500 for unknown users, and counted no failure)."""
    await api.register("alice", PASSWORD)
    crafted = "dummy password for unknown users"
    for username in ("nobody", "alice"):
        response = await api.request(
            "POST", "/auth/login", json={"username": username, "password": crafted}
        )
        assert_error(response, 401, "invalid_grant")
    for _ in range(9):  # counted like any wrong password: the eleventh attempt is refused
        response = await api.request(
            "POST", "/auth/login", json={"username": "nobody", "password": crafted}
        )
        assert_error(response, 401, "invalid_grant")
    response = await api.request(
        "POST", "/auth/login", json={"username": "nobody", "password": crafted}
    )
    assert_error(response, 429, "rate_limited")


@pytest.mark.parametrize(
    "look_alike",
    ["alİce", "ALİCE", "al\u0131ce", "ａlice", "alice\u0307", "ALICE\u200b", " alice", "alice "],
)
async def test_a_look_alike_username_is_an_unknown_user(api: Api, look_alike: str) -> None:
    """No idea of case other than ASCII maps a name onto an account: `alİce` is nobody."""
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/login", json={"username": look_alike, "password": PASSWORD}
    )
    assert_error(response, 401, "invalid_grant")
    token = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "password", "username": look_alike, "password": PASSWORD},
    )
    assert_error(token, 400, "invalid_grant")
    # the real spellings, in any ASCII case, still log in
    for spelling in ("alice", "ALICE", "Alice"):
        await api.login(spelling, PASSWORD)


async def test_a_look_alike_username_gets_no_fresh_failure_budget(api: Api) -> None:
    await api.register("alice", PASSWORD)
    for _ in range(10):
        response = await api.request(
            "POST", "/auth/login", json={"username": "alice", "password": "wrong password"}
        )
        assert_error(response, 401, "invalid_grant")
    for spelling in ("alice", "alİce", "ALİCE"):
        response = await api.request(
            "POST", "/auth/login", json={"username": spelling, "password": PASSWORD}
        )
        assert response.status != 200, (spelling, response.text)


async def test_a_cut_off_never_catches_a_later_token_whatever_the_clocks(api: Api, db: Any) -> None:
    """Another host, its clock an hour ahead, logs the user out everywhere: cut-offs go by
    the user's token version, not by time, so a login here right after gets tokens that work
    at once everywhere, dated now (never ahead)."""
    first = await api.user("alice", PASSWORD)
    version = await db.fetchval(
        "UPDATE users SET token_version = token_version + 1,"
        " tokens_valid_after = now() + interval '1 hour' WHERE id = $1 RETURNING token_version",
        uuid.UUID(first["account_id"]),
    )
    await api.app.ctx.revocations.revoke([], user_id=first["account_id"], version=version)
    me = await api.request("GET", "/api/me", token=first["access_token"])
    assert_error(me, 401, "invalid_token")  # the earlier token is cut off
    fresh = await api.login("alice", PASSWORD)
    issued = claims(fresh["access_token"])
    assert issued["ver"] == version
    assert abs(issued["iat"] - time.time()) < 2
    me = await api.request("GET", "/api/me", token=fresh["access_token"])
    assert me.status == 200, me.text
    refreshed = await api.refresh(fresh["refresh_token"])
    assert refreshed.status == 200, refreshed.text
    me = await api.request("GET", "/api/me", token=refreshed.json["access_token"])
    assert me.status == 200, me.text
