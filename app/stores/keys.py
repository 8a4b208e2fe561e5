"""SQL for the signing keys: read them all, and the lifecycle's steps, each a compare-and-set
that holds whoever else is acting (the rotation's advisory lock only spares the work)."""

from __future__ import annotations

import asyncpg

from app.db import Queryable
from app.keys import LEGACY_KID, KeyState, NewKey, StoredKey

KEYS_LOCK = 0x6A77_7472_6B65_7973  # the advisory lock of the key lifecycle ("jwtrkeys")


class KeysMoved(Exception):
    """A lifecycle step found the keys changed under it; its transaction rolls back."""


_COLUMNS = (
    "kid, alg, state, material, extract(epoch FROM created_at) AS created_at,"
    " extract(epoch FROM activated_at) AS activated_at,"
    " extract(epoch FROM retired_at) AS retired_at"
)


def _stored(row: asyncpg.Record) -> StoredKey:
    def seconds(name: str) -> float | None:
        value = row[name]
        return None if value is None else float(value)

    material = row["material"]
    return StoredKey(
        row["kid"],
        row["alg"],
        KeyState(row["state"]),
        float(row["created_at"]),
        seconds("activated_at"),
        seconds("retired_at"),
        None if material is None else bytes(material),
    )


async def load(db: Queryable) -> list[StoredKey]:
    return [_stored(row) for row in await db.fetch(f"SELECT {_COLUMNS} FROM signing_keys")]


async def lock(conn: asyncpg.Connection, *, wait: bool) -> bool:
    """The lifecycle's advisory lock, for the transaction `conn` is in."""
    if wait:
        await conn.execute("SELECT pg_advisory_xact_lock($1)", KEYS_LOCK)
        return True
    return bool(await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", KEYS_LOCK))


async def create(
    conn: Queryable, current: NewKey, upcoming: NewKey, legacy_alg: str | None
) -> bool:
    """A fresh database's keys: one signing, one next; with `legacy_alg`, also JWT_SECRET as
    the retired legacy key, for the tokens an earlier release issued. False if keys exist."""
    created = await conn.fetchval(
        "INSERT INTO signing_keys (kid, alg, state, material, created_at, activated_at)"
        " SELECT $1, $2, 'current', $3, clock_timestamp(), clock_timestamp()"
        " WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE state = 'current')"
        " RETURNING true",
        current.kid,
        current.alg,
        current.material,
    )
    if not created:
        return False
    await add_next(conn, upcoming)
    if legacy_alg is not None:
        await conn.execute(
            "INSERT INTO signing_keys (kid, alg, state, retired_at)"
            " VALUES ($1, $2, 'retired', clock_timestamp()) ON CONFLICT (kid) DO NOTHING",
            LEGACY_KID,
            legacy_alg,
        )
    return True


async def has_live_sessions(conn: Queryable) -> bool:
    """Sessions an earlier release may have issued tokens for (an upgrade, not a fresh start)."""
    return bool(
        await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM sessions WHERE revoked_at IS NULL AND expires_at > now())"
        )
    )


async def add_next(conn: Queryable, key: NewKey) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (kid, alg, state, material, created_at)"
        " VALUES ($1, $2, 'next', $3, clock_timestamp())",
        key.kid,
        key.alg,
        key.material,
    )


async def drop_next(conn: Queryable, kid: str) -> bool:
    """Withdraw a next key that never signed (one of an algorithm no longer configured)."""
    status = await conn.execute("DELETE FROM signing_keys WHERE kid = $1 AND state = 'next'", kid)
    return status != "DELETE 0"


async def rotate(conn: Queryable, current_kid: str, next_kid: str, upcoming: NewKey) -> bool:
    """`next_kid` takes over from `current_kid`, which retires, and `upcoming` becomes the
    next key; nothing happens (False) unless both are still in those states."""
    moved = await conn.fetchval(
        "WITH retired AS (UPDATE signing_keys SET state = 'retired', retired_at = clock_timestamp()"
        " WHERE kid = $1 AND state = 'current' RETURNING kid)"
        " SELECT count(*) FROM retired",
        current_kid,
    )
    if moved != 1:
        return False
    promoted = await conn.fetchval(
        "UPDATE signing_keys SET state = 'current', activated_at = clock_timestamp()"
        " WHERE kid = $1 AND state = 'next' RETURNING true",
        next_kid,
    )
    if not promoted:  # the transaction must not commit a deployment without a signing key
        raise KeysMoved(f"key {next_kid!r} is no longer the next key")
    await add_next(conn, upcoming)
    return True


async def remove(conn: Queryable, kids: list[str], horizon: int) -> int:
    """Delete the retired keys among `kids` whose horizon (seconds) has passed."""
    status = await conn.execute(
        "DELETE FROM signing_keys WHERE kid = ANY($1::text[]) AND state = 'retired'"
        " AND retired_at <= now() - make_interval(secs => $2)",
        kids,
        float(horizon),
    )
    return int(status.rsplit(" ", 1)[1])


async def delete(conn: Queryable, kid: str) -> None:
    """Delete a key that does not sign (the operator's revocation of a compromised key)."""
    await conn.execute("DELETE FROM signing_keys WHERE kid = $1 AND state <> 'current'", kid)
