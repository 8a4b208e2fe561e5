"""SQL for the audit trail: security events, kept `AUDIT_RETENTION` days, read newest first.

No token and no password ever goes into an event: only ids, the caller's address and agent,
the request id, and a small `detail` object of plain facts (a reason, a scope, a count).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from app.db import Queryable
from app.origin import ClientInfo

# The columns every insert fills, in this order (the CTEs of stores/sessions.py too).
COLUMNS = "type, user_id, session_id, ip, user_agent, request_id, actor_id, detail"


async def record(
    db: Queryable,
    kind: str,
    user_id: str | None,
    client: ClientInfo,
    *,
    session_id: str | None = None,
    actor_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    await db.execute(
        f"INSERT INTO events ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb)",
        kind,
        user_id,
        session_id,
        client.ip,
        client.user_agent,
        client.request_id,
        actor_id,
        json.dumps(detail or {}),
    )


async def page(
    db: Queryable, user_id: str, *, limit: int, after: tuple[datetime, int] | None
) -> list[asyncpg.Record]:
    """The user's events, newest first: up to `limit`, strictly after the position `after`
    (the last event's time and id of the page before)."""
    return await db.fetch(
        "SELECT e.id, e.type, e.at, e.session_id, e.ip, e.user_agent, e.request_id,"
        " a.username AS actor, e.detail FROM events e LEFT JOIN users a ON a.id = e.actor_id"
        " WHERE e.user_id = $1 AND ($3::timestamptz IS NULL OR (e.at, e.id) < ($3, $4))"
        " ORDER BY e.at DESC, e.id DESC LIMIT $2",
        user_id,
        limit,
        after[0] if after else None,
        after[1] if after else None,
    )


async def purge(db: Queryable, older_than_days: int, batch: int) -> int:
    """Delete up to `batch` events older than the retention; how many went."""
    status = await db.execute(
        "DELETE FROM events WHERE id IN (SELECT id FROM events"
        " WHERE at < now() - make_interval(days => $1) LIMIT $2)",
        older_than_days,
        batch,
    )
    return int(status.split()[-1])
