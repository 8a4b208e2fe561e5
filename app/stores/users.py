"""SQL for users."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from app.db import Queryable
from app.errors import UsernameExists


async def create(db: Queryable, username: str, password_hash: str, scope: str) -> asyncpg.Record:
    """The new user; `UsernameExists` if the name is taken (ignoring case)."""
    try:
        row = await db.fetchrow(
            "INSERT INTO users (username, password_hash, scope) VALUES ($1, $2, $3)"
            " RETURNING id, username, scope, created_at",
            username,
            password_hash,
            scope,
        )
    except asyncpg.UniqueViolationError:
        raise UsernameExists(f"The username {username!r} is taken.") from None
    assert row is not None
    return row


_USER = "id, username, password_hash, scope, disabled_at, tokens_valid_after"


async def by_username(db: Queryable, username: str) -> asyncpg.Record | None:
    """The user of a normalised username (see `app.policy.normalise_username`)."""
    return await db.fetchrow(f"SELECT {_USER} FROM users WHERE lower(username) = $1", username)


async def by_id(db: Queryable, user_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(f"SELECT {_USER} FROM users WHERE id = $1", user_id)


async def rehash(db: Queryable, user_id: str, verified_hash: str, new_hash: str) -> bool:
    """Replace the hash a login verified by a rehash of the same password, unless the password
    changed meanwhile (compare-and-set)."""
    status = await db.execute(
        "UPDATE users SET password_hash = $3, updated_at = now()"
        " WHERE id = $1 AND password_hash = $2",
        user_id,
        verified_hash,
        new_hash,
    )
    return status != "UPDATE 0"


async def cut_off_with_password(
    db: Queryable, user_id: str, verified_hash: str, new_hash: str | None, cut: datetime
) -> asyncpg.Record | None:
    """Set a new password (or keep it, `new_hash` None) and cut off every token issued until
    `cut`, only while the password is still the one verified and the user not disabled."""
    return await db.fetchrow(
        "UPDATE users SET password_hash = coalesce($3, password_hash),"
        " tokens_valid_after = $4, updated_at = now()"
        f" WHERE id = $1 AND password_hash = $2 AND disabled_at IS NULL RETURNING {_USER}",
        user_id,
        verified_hash,
        new_hash,
        cut,
    )


async def set_scope(db: Queryable, user_id: str, scope: str, cut: datetime | None) -> None:
    """The user's scopes from now on; `cut` also cuts off the tokens issued until then."""
    await db.execute(
        "UPDATE users SET scope = $2, tokens_valid_after = coalesce($3, tokens_valid_after),"
        " updated_at = now() WHERE id = $1",
        user_id,
        scope,
        cut,
    )


async def set_disabled(db: Queryable, user_id: str, disabled: bool) -> None:
    await db.execute(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END,"
        " updated_at = now() WHERE id = $1",
        user_id,
        disabled,
    )


async def set_tokens_valid_after(db: Queryable, user_id: str, moment: datetime) -> None:
    await db.execute(
        "UPDATE users SET tokens_valid_after = $2, updated_at = now() WHERE id = $1",
        user_id,
        moment,
    )


async def not_before_within(db: Queryable, seconds: int) -> list[tuple[str, int, int]]:
    """Users whose tokens were cut off in the last `seconds`: (id, not before, remaining)."""
    rows = await db.fetch(
        "SELECT id, extract(epoch FROM tokens_valid_after)::bigint AS not_before,"
        " ceil(extract(epoch FROM tokens_valid_after + make_interval(secs => $1) - now()))::int"
        " AS remaining FROM users WHERE tokens_valid_after > now() - make_interval(secs => $1)",
        float(seconds),
    )
    return [
        (str(row["id"]), int(row["not_before"]), int(row["remaining"]))
        for row in rows
        if row["remaining"] > 0
    ]
