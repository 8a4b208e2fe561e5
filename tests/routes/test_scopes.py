"""Scopes never outlive the account's: every refresh and a password change issue at most the
scopes the user has now."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from tests.support import Api
from tests.support.asserts import assert_token_response, change_password, make_admin

PASSWORD = "correct horse"


async def demote(db: Any, username: str, scope: str) -> None:
    """The account's scopes changed in PostgreSQL (as `set-scope` stores them)."""
    await db.execute("UPDATE users SET scope = $2 WHERE lower(username) = $1", username, scope)


async def test_a_refresh_issues_only_the_scopes_the_user_still_has(api: Api, db: Any) -> None:
    tokens = await make_admin(api)
    assert tokens["scope"] == "notes:read notes:write admin"
    await demote(db, "root", "notes:read notes:write")
    fresh = assert_token_response(await api.refresh(tokens["refresh_token"]))
    assert fresh["scope"] == "notes:read notes:write"
    denied = await api.request("POST", "/api/admin/users/root/enable", token=fresh["access_token"])
    assert denied.status == 403, denied.text
    # and the session keeps the narrower scope, even if the account gets admin back
    await demote(db, "root", "notes:read notes:write admin")
    again = assert_token_response(await api.refresh(fresh["refresh_token"]))
    assert again["scope"] == "notes:read notes:write"


async def test_a_narrowed_refresh_narrows_the_current_scopes(api: Api, db: Any) -> None:
    tokens = await make_admin(api)
    await demote(db, "root", "notes:read admin")
    answer = await api.request(
        "POST",
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "notes:read notes:write",
        },
    )
    assert assert_token_response(answer)["scope"] == "notes:read"


async def test_a_password_change_keeps_only_the_current_scopes(api: Api, db: Any) -> None:
    tokens = await make_admin(api)
    await demote(db, "root", "notes:read notes:write")
    changed = await change_password(
        api,
        tokens["access_token"],
        {"current_password": "root password 1", "new_password": "a new root password"},
    )
    assert assert_token_response(changed)["scope"] == "notes:read notes:write"


async def test_a_login_never_asks_for_more_than_the_current_scopes(api: Api, db: Any) -> None:
    await api.register("alice", PASSWORD)
    await demote(db, "alice", "notes:read")
    assert (await api.login("alice", PASSWORD))["scope"] == "notes:read"
    asked = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD, "scope": "notes:write"},
    )
    assert asked.status == 400 and asked.json["error"] == "invalid_scope"


async def test_a_scope_removal_whose_redis_step_failed_is_completed_by_running_it_again(
    api: Api, redis: Redis
) -> None:
    tokens = await make_admin(api)
    admin = api.app.ctx.accounts.admin
    await admin.set_scope("root", "notes:read notes:write")
    key = api.app.ctx.revocations.store.user_key(tokens["account_id"])
    assert await redis.delete(key) == 1  # as if that Redis step had failed
    before, after = await admin.set_scope("root", "notes:read notes:write")
    assert before == after  # nothing to remove this time, and still:
    assert await redis.exists(key) == 1
    denied = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert denied.status == 401, denied.text


async def test_scopes_with_other_white_space_than_spaces_are_refused(api: Api) -> None:
    """A tab splits differently in SQL and in Python: refused, never an empty pair."""
    tokens = await api.user("alice", PASSWORD)
    for scope in ("notes:read\\tnotes:write", "notes:read\\nnotes:write", "\\t"):
        answer = await api.request(
            "POST",
            "/auth/token",
            data={
                "grant_type": "refresh_token",
                "refresh_token": tokens["refresh_token"],
                "scope": scope,
            },
        )
        assert answer.status == 400 and answer.json["error"] == "invalid_request", answer.text
    blank = await api.request(
        "POST",
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": " ",
        },
    )
    assert assert_token_response(blank)["scope"] == "notes:read notes:write"  # none asked for
