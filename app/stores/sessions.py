"""SQL for login sessions: one row per login, holding the one refresh token usable next."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from app.db import Queryable
from app.origin import ClientInfo
from app.stores import events


async def create(
    db: Queryable,
    *,
    sid: str,
    user_id: str,
    scope: str,
    jti: str,
    expires_at: datetime,
    client: ClientInfo,
    version: int,
    event: str,
    detail: dict[str, Any] | None = None,
) -> str | None:
    """Start a session, but only while the user is as the caller verified it: not disabled,
    and at token version `version` (no password change, disable or cut-off since), and
    record the audit `event` with it. The session gets `scope` within the user's current
    scopes; that scope, or None when the user changed meanwhile (and nothing is written)."""
    granted: str | None = await db.fetchval(
        "WITH s AS (INSERT INTO sessions"
        " (id, user_id, scope, current_jti, expires_at, user_agent, ip)"
        " SELECT $1, u.id, scope_intersect(u.scope, $3), $4, $5, $6, $7 FROM users u"
        " WHERE u.id = $2 AND u.token_version = $8 AND u.disabled_at IS NULL"
        # The user's row locked: a password change, disable or log out everywhere either
        # commits first (and the conditions above, checked again, fail), or waits for this
        # session and then ends it.
        " FOR SHARE OF u"
        " RETURNING id, user_id, scope),"
        f" e AS (INSERT INTO events ({events.COLUMNS})"
        " SELECT $9, user_id, id, $7, $6, $10, NULL, $11::jsonb FROM s)"
        " SELECT scope FROM s",
        sid,
        user_id,
        scope,
        jti,
        expires_at,
        client.user_agent,
        client.ip,
        version,
        event,
        client.request_id,
        json.dumps(detail or {}),
    )
    return granted


# What a rotation's pair is made of: the same columns whether it was just rotated or is read
# back for a retry, so that both answers are the same bytes.
_PAIR = (
    "s.user_id, coalesce(s.rotated_scope, s.scope) AS scope, s.expires_at, u.username,"
    " extract(epoch FROM s.rotated_at)::bigint AS issued_at,"
    " coalesce(s.rotated_version, 0) AS version, s.rotated_kid AS kid"
)


async def rotate(
    db: Queryable,
    *,
    sid: str,
    jti: str,
    new_jti: str,
    now: int,
    scope: str | None,
    client: ClientInfo,
    kid: str,
) -> asyncpg.Record | None:
    """Compare-and-set the session's refresh token: only the current `jti` moves it on, to
    `new_jti`, issued at `now` by key `kid` with the user's current token version.

    No lock on the user's row: a cut-off committing meanwhile raises the version past the one
    read here, so this pair is refused all the same, and its session, locked by this update,
    is ended by the cut-off once this commits. The session keeps only the scopes its user
    still has; the pair gets those, narrowed to `scope` when given. Of any number of
    concurrent calls with one `jti`, exactly one gets a row. None when the token is not the
    current one, the session is revoked or expired, or the user disabled. A rotation is
    recorded as a `refresh` event.
    """
    return await db.fetchrow(
        "WITH r AS (UPDATE sessions s SET current_jti = $3, previous_jti = $2,"
        " rotated_at = to_timestamp($4),"
        " scope = scope_intersect(s.scope, u.scope),"
        " rotated_scope = scope_intersect(scope_intersect(s.scope, u.scope), $5),"
        " rotated_version = u.token_version, rotated_kid = $9,"
        " last_used_at = now(), user_agent = coalesce($6, s.user_agent), ip = coalesce($7, s.ip)"
        " FROM users u"
        " WHERE s.id = $1 AND s.current_jti = $2 AND s.revoked_at IS NULL"
        " AND s.expires_at > now() AND u.id = s.user_id AND u.disabled_at IS NULL"
        f" RETURNING s.id, {_PAIR}),"
        # the audit event in the same statement: no extra round trip on the busiest write
        f" e AS (INSERT INTO events ({events.COLUMNS})"
        " SELECT 'refresh', user_id, id, $7, $6, $8, NULL, '{}' FROM r)"
        " SELECT * FROM r",
        sid,
        jti,
        new_jti,
        now,
        scope,
        client.user_agent,
        client.ip,
        client.request_id,
        kid,
    )


async def refresh_state(
    db: Queryable,
    *,
    sid: str,
    jti: str,
    successor: str,
    grace_seconds: int,
    ended_window: int,
) -> asyncpg.Record | None:
    """What a refresh that did not rotate should make of `jti` in session `sid`, and the pair
    of the session's latest rotation. `replaced`: `jti` was rotated to a token other than
    its derived successor (by an older release): refused, but no sign of theft.
    `recently_ended`: the session ended within `ended_window` seconds (its access tokens may
    still live, so its revocation must be published)."""
    return await db.fetchrow(
        "SELECT s.current_jti = $2 AS is_current,"
        " s.previous_jti = $2 AND s.current_jti = $3"
        " AND s.rotated_at > now() - make_interval(secs => $4) AS in_grace,"
        " s.previous_jti = $2 AND s.current_jti <> $3 AS replaced,"
        " s.revoked_at IS NOT NULL OR s.expires_at <= now() OR u.disabled_at IS NOT NULL"
        " AS ended, s.revoked_at > now() - make_interval(secs => $5) AS recently_ended,"
        f" {_PAIR}"
        " FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = $1",
        sid,
        jti,
        successor,
        float(grace_seconds),
        float(ended_window),
    )


async def revoke(
    db: Queryable,
    sid: str,
    reason: str,
    *,
    event: str,
    client: ClientInfo,
    actor_id: str | None = None,
) -> bool:
    """End one session and record the audit `event`. False when there was no live session
    (and nothing is recorded)."""
    ended = await db.fetchval(
        "WITH s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = $2"
        " WHERE id = $1 AND revoked_at IS NULL RETURNING id, user_id),"
        f" e AS (INSERT INTO events ({events.COLUMNS})"
        " SELECT $3, user_id, id, $4, $5, $6, $7, jsonb_build_object('reason', $2::text) FROM s)"
        " SELECT count(*) FROM s",
        sid,
        reason,
        event,
        client.ip,
        client.user_agent,
        client.request_id,
        actor_id,
    )
    return bool(ended)


async def trim(db: Queryable, user_id: str, keep: int, client: ClientInfo) -> list[str]:
    """End the user's oldest live sessions beyond the newest `keep` (MAX_SESSIONS_PER_USER),
    each recorded as a `session_ended` event; their ids."""
    rows = await db.fetch(
        "WITH s AS (UPDATE sessions SET revoked_at = now(), revoked_reason = 'session_limit'"
        " WHERE id IN (SELECT id FROM sessions WHERE user_id = $1 AND revoked_at IS NULL"
        " AND expires_at > now() ORDER BY created_at DESC, id DESC OFFSET $2)"
        " AND revoked_at IS NULL RETURNING id, user_id),"
        f" e AS (INSERT INTO events ({events.COLUMNS})"
        " SELECT 'session_ended', user_id, id, $3, $4, $5, NULL,"
        ' \'{"reason": "session_limit"}\' FROM s)'
        " SELECT id FROM s",
        user_id,
        keep,
        client.ip,
        client.user_agent,
        client.request_id,
    )
    return [str(row["id"]) for row in rows]


async def ended_within(db: Queryable, sid: str, seconds: int) -> bool:
    """Whether the session ended in the last `seconds`: its access tokens may still live."""
    return bool(
        await db.fetchval(
            "SELECT true FROM sessions WHERE id = $1"
            " AND revoked_at > now() - make_interval(secs => $2)",
            sid,
            float(seconds),
        )
    )


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


async def page_active(
    db: Queryable, user_id: str, *, limit: int, after: tuple[datetime, str] | None
) -> list[asyncpg.Record]:
    """The user's live sessions, newest first: up to `limit`, strictly after the position
    `after` (the last session's creation time and id of the page before)."""
    return await db.fetch(
        "SELECT id, created_at, last_used_at, expires_at, user_agent, ip FROM sessions"
        " WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > now()"
        " AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4::uuid))"
        " ORDER BY created_at DESC, id DESC LIMIT $2",
        user_id,
        limit,
        after[0] if after else None,
        after[1] if after else None,
    )


# Sessions that revoke-all ended before its cut-off need no mark of their own: the cut-off
# refuses every token they issued (it lies past any host's clock at the time they ended).
_NOT_UNDER_CUT_OFF = (
    " AND NOT (revoked_reason = 'revoke_all'"
    " AND EXISTS (SELECT 1 FROM global_cut_off c WHERE c.not_before > revoked_at))"
)


async def recently_revoked(db: Queryable, user_id: str, seconds: int) -> list[str]:
    """Sessions of the user ended in the last `seconds`: their access tokens may still live."""
    rows = await db.fetch(
        "SELECT id FROM sessions WHERE user_id = $1"
        " AND revoked_at > now() - make_interval(secs => $2)" + _NOT_UNDER_CUT_OFF,
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
        "::int AS remaining FROM sessions WHERE revoked_at > now() - make_interval(secs => $1)"
        + _NOT_UNDER_CUT_OFF,
        float(seconds),
    )
    return [(str(row["id"]), int(row["remaining"])) for row in rows if row["remaining"] > 0]


async def purge(db: Queryable, horizon_seconds: int, batch: int) -> int:
    """Delete up to `batch` sessions that ended (or expired) more than `horizon_seconds` ago:
    with the longest token lifetime plus the clock skew as the horizon, no token they issued
    can still be unexpired. A live session never matches. How many went."""
    status = await db.execute(
        "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions"
        " WHERE least(coalesce(revoked_at, expires_at), expires_at)"
        " < now() - make_interval(secs => $1) LIMIT $2)",
        float(horizon_seconds),
        batch,
    )
    return int(status.split()[-1])


async def refresh_active(db: Queryable, sid: str, jti: str) -> asyncpg.Record | None:
    """The session's username and scope when `jti` is its refresh token usable next, the
    session live and its user enabled; None otherwise."""
    return await db.fetchrow(
        "SELECT u.username, coalesce(s.rotated_scope, s.scope) AS scope FROM sessions s"
        " JOIN users u ON u.id = s.user_id WHERE s.id = $1 AND s.current_jti = $2"
        " AND s.revoked_at IS NULL AND s.expires_at > now() AND u.disabled_at IS NULL",
        sid,
        jti,
    )
