"""SQL for users."""

from __future__ import annotations

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


_USER = "id, username, password_hash, scope, disabled_at, token_version"


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
    db: Queryable, user_id: str, version: int, new_hash: str
) -> asyncpg.Record | None:
    """Set a new password and cut off every token of the user, only while the user is as the
    caller read it (its token version) and not disabled; the user as it is now."""
    return await db.fetchrow(
        "UPDATE users SET password_hash = $3, token_version = token_version + 1,"
        " tokens_valid_after = now(), updated_at = now()"
        f" WHERE id = $1 AND token_version = $2 AND disabled_at IS NULL RETURNING {_USER}",
        user_id,
        version,
        new_hash,
    )


async def lock(db: Queryable, user_id: str, recent: int) -> asyncpg.Record:
    """The user's row, locked for update until the transaction ends; `recently_cut`: cut off
    in the last `recent` seconds."""
    row = await db.fetchrow(
        "SELECT scope, token_version,"
        " tokens_valid_after > now() - make_interval(secs => $2) AS recently_cut"
        " FROM users WHERE id = $1 FOR UPDATE",
        user_id,
        float(recent),
    )
    assert row is not None
    return row


async def set_scope(db: Queryable, user_id: str, scope: str, cut: bool) -> int:
    """The user's scopes from now on; `cut` also cuts off every token issued until now. The
    user's token version, as it is now."""
    version: int = await db.fetchval(
        "UPDATE users SET scope = $2, token_version = token_version + $3,"
        " tokens_valid_after = CASE WHEN $3 > 0 THEN now() ELSE tokens_valid_after END,"
        " updated_at = now() WHERE id = $1 RETURNING token_version",
        user_id,
        scope,
        1 if cut else 0,
    )
    return version


async def set_disabled(db: Queryable, user_id: str, disabled: bool) -> None:
    await db.execute(
        "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END,"
        " updated_at = now() WHERE id = $1",
        user_id,
        disabled,
    )


async def cut_off(db: Queryable, user_id: str) -> int:
    """Refuse every token of the user issued until now; its new token version."""
    version: int = await db.fetchval(
        "UPDATE users SET token_version = token_version + 1, tokens_valid_after = now(),"
        " updated_at = now() WHERE id = $1 RETURNING token_version",
        user_id,
    )
    return version


async def cut_off_within(db: Queryable, seconds: int) -> list[tuple[str, int, int]]:
    """Users cut off in the last `seconds`: (id, token version, seconds that still matter)."""
    rows = await db.fetch(
        "SELECT id, token_version,"
        " ceil(extract(epoch FROM tokens_valid_after + make_interval(secs => $1) - now()))::int"
        " AS remaining FROM users WHERE tokens_valid_after > now() - make_interval(secs => $1)",
        float(seconds),
    )
    return [
        (str(row["id"]), int(row["token_version"]), int(row["remaining"]))
        for row in rows
        if row["remaining"] > 0
    ]
