"""SQL for users."""

from __future__ import annotations

import asyncpg

from app.db import Database
from app.errors import UsernameTaken

DEFAULT_SCOPE = "notes:read notes:write"
ADMIN_SCOPE = "admin"


async def create(
    db: Database, username: str, password_hash: str, scope: str = DEFAULT_SCOPE
) -> asyncpg.Record:
    try:
        row = await db.fetchrow(
            "INSERT INTO users (username, password_hash, scope) VALUES ($1, $2, $3)"
            " RETURNING id, username, scope, created_at",
            username,
            password_hash,
            scope,
        )
    except asyncpg.UniqueViolationError:
        raise UsernameTaken() from None
    assert row is not None
    return row


async def by_username(db: Database, username: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        "SELECT id, username, password_hash, scope, disabled_at FROM users"
        " WHERE lower(username) = lower($1)",
        username,
    )


async def set_password_hash(db: Database, user_id: str, password_hash: str) -> None:
    await db.execute(
        "UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1",
        user_id,
        password_hash,
    )
