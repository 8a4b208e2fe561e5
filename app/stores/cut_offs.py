"""SQL for the global cut-off of `revoke-all`: every token issued before it is refused."""

from __future__ import annotations

from app.db import Queryable


async def revoke_all(db: Queryable, skew: int) -> tuple[int, int]:
    """End every live session and set the global cut-off past every token issued until now,
    on any host's clock (now + `skew` + 1 s): (the cut-off in epoch seconds, sessions ended).
    Run it in a transaction: both or neither."""
    not_before: int = await db.fetchval(
        "INSERT INTO global_cut_off (not_before)"
        " VALUES (date_trunc('second', now()) + make_interval(secs => $1 + 1))"
        " ON CONFLICT (singleton) DO UPDATE SET not_before ="
        " greatest(global_cut_off.not_before, excluded.not_before)"
        " RETURNING extract(epoch FROM not_before)::bigint",
        float(skew),
    )
    ended: int = await db.fetchval(
        "WITH e AS (UPDATE sessions SET revoked_at = now(), revoked_reason = 'revoke_all'"
        " WHERE revoked_at IS NULL AND expires_at > now() RETURNING 1) SELECT count(*) FROM e"
    )
    return int(not_before), int(ended)


async def not_before_within(db: Queryable, seconds: int) -> int | None:
    """The global cut-off, while a token issued before it may still live (`seconds` past it)."""
    value = await db.fetchval(
        "SELECT extract(epoch FROM not_before)::bigint FROM global_cut_off"
        " WHERE not_before > now() - make_interval(secs => $1)",
        float(seconds),
    )
    return int(value) if value is not None else None
