"""SQL for notes; every query is scoped to the owner, so another user's note is simply absent."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from app.db import Queryable

_COLUMNS = "id, title, body, created_at, updated_at"


async def page_for(
    db: Queryable, user_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[asyncpg.Record]:
    """The user's notes, newest first: up to `limit`, strictly after the position `after`
    (the last note's creation time and id of the page before)."""
    return await db.fetch(
        f"SELECT {_COLUMNS} FROM notes WHERE user_id = $1"
        " AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT $2",
        user_id,
        limit,
        after[0] if after else None,
        after[1] if after else None,
    )


async def create(db: Queryable, user_id: str, title: str, body: str) -> asyncpg.Record:
    row = await db.fetchrow(
        f"INSERT INTO notes (user_id, title, body) VALUES ($1, $2, $3) RETURNING {_COLUMNS}",
        user_id,
        title,
        body,
    )
    assert row is not None
    return row


async def get(db: Queryable, user_id: str, note_id: str) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"SELECT {_COLUMNS} FROM notes WHERE id = $1 AND user_id = $2", note_id, user_id
    )


async def update(
    db: Queryable, user_id: str, note_id: str, title: str, body: str
) -> asyncpg.Record | None:
    return await db.fetchrow(
        f"UPDATE notes SET title = $3, body = $4, updated_at = now()"
        f" WHERE id = $1 AND user_id = $2 RETURNING {_COLUMNS}",
        note_id,
        user_id,
        title,
        body,
    )


async def delete(db: Queryable, user_id: str, note_id: str) -> bool:
    status = await db.execute("DELETE FROM notes WHERE id = $1 AND user_id = $2", note_id, user_id)
    return status != "DELETE 0"
