"""SQL for login sessions: one row per login, holding the one refresh token usable next."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from app.db import Queryable


async def create(
    db: Queryable,
    *,
    sid: str,
    user_id: str,
    scope: str,
    jti: str,
    expires_at: datetime,
    user_agent: str | None,
    ip: str | None,
) -> None:
    await db.execute(
        "INSERT INTO sessions (id, user_id, scope, current_jti, expires_at, user_agent, ip)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        sid,
        user_id,
        scope,
        jti,
        expires_at,
        user_agent,
        ip,
    )


async def rotate(
    db: Queryable,
    *,
    sid: str,
    jti: str,
    new_jti: str,
    user_agent: str | None,
    ip: str | None,
) -> asyncpg.Record | None:
    """Compare-and-set the session's refresh token: only the current `jti` moves it on.

    Of any number of concurrent calls with one `jti`, exactly one gets a row. None when the
    token is not the current one, or the session is revoked or expired, or the user disabled.
    """
    return await db.fetchrow(
        "UPDATE sessions s SET current_jti = $3, previous_jti = $2, rotated_at = now(),"
        " last_used_at = now(), user_agent = coalesce($4, s.user_agent), ip = coalesce($5, s.ip)"
        " FROM users u"
        " WHERE s.id = $1 AND s.current_jti = $2 AND s.revoked_at IS NULL"
        " AND s.expires_at > now() AND u.id = s.user_id AND u.disabled_at IS NULL"
        " RETURNING s.user_id, s.scope, s.expires_at, u.username",
        sid,
        jti,
        new_jti,
        user_agent,
        ip,
    )


async def refresh_state(
    db: Queryable, *, sid: str, jti: str, grace_seconds: int
) -> asyncpg.Record | None:
    """What a refresh that did not go through should make of `jti` in session `sid`."""
    return await db.fetchrow(
        "SELECT s.current_jti = $2 AS is_current,"
        " s.previous_jti = $2 AND s.rotated_at > now() - make_interval(secs => $3) AS in_grace,"
        " s.revoked_at IS NOT NULL OR s.expires_at <= now() OR u.disabled_at IS NOT NULL AS ended"
        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        sid,
        jti,
        float(grace_seconds),
    )


async def revoke(db: Queryable, sid: str, reason: str) -> bool:
    """End one session. False when there was no live session."""
    status = await db.execute(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2"
        " WHERE id = $1 AND revoked_at IS NULL",
        sid,
        reason,
    )
    return status != "UPDATE 0"


async def is_active_for(db: Queryable, sid: str, user_id: str) -> bool:
    return bool(
        await db.fetchval(
            "SELECT true FROM sessions WHERE id = $1 AND user_id = $2"
            " AND revoked_at IS NULL AND expires_at > now()",
            sid,
            user_id,
        )
    )


async def revoke_all(db: Queryable, user_id: str, reason: str) -> list[str]:
    """End every live session of the user; the ids of those it ended."""
    rows = await db.fetch(
        "UPDATE sessions SET revoked_at = now(), revoked_reason = $2"
        " WHERE user_id = $1 AND revoked_at IS NULL RETURNING id",
        user_id,
        reason,
    )
    return [str(row["id"]) for row in rows]


async def list_active(db: Queryable, user_id: str) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT id, created_at, last_used_at, expires_at, user_agent, ip FROM sessions"
        " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()"
        " ORDER BY created_at DESC, id",
        user_id,
    )


async def recently_revoked(db: Queryable, user_id: str, seconds: int) -> list[str]:
    """Sessions of the user ended in the last `seconds`: their access tokens may still live."""
    rows = await db.fetch(
        "SELECT id FROM sessions WHERE user_id = $1"
        " AND revoked_at > now() - make_interval(secs => $2)",
        user_id,
        float(seconds),
    )
    return [str(row["id"]) for row in rows]


async def scope_of(db: Queryable, sid: str) -> str | None:
    scope: str | None = await db.fetchval("SELECT scope FROM sessions WHERE id = $1", sid)
    return scope


async def revoked_within(db: Queryable, seconds: int) -> list[tuple[str, int]]:
    """Sessions ended in the last `seconds`, each with the seconds its mark still matters."""
    rows = await db.fetch(
        "SELECT id, ceil(extract(epoch FROM revoked_at + make_interval(secs => $1) - now()))"
        "::int AS remaining FROM sessions WHERE revoked_at > now() - make_interval(secs => $1)",
        float(seconds),
    )
    return [(str(row["id"]), int(row["remaining"])) for row in rows if row["remaining"] > 0]
