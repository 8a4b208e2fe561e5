"""The cheapest question each dependency answers: for readiness checks."""

from __future__ import annotations

from redis.asyncio import Redis

from app.db import Queryable


async def schema_version(db: Queryable) -> str | None:
    """The newest migration applied to the database; None when it was never migrated."""
    if not await db.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return None
    version: str | None = await db.fetchval("SELECT max(version) FROM schema_migrations")
    return version


async def redis(client: Redis) -> None:
    await client.ping()
