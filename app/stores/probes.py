"""The cheapest question each dependency answers: for readiness checks."""

from __future__ import annotations

from redis.asyncio import Redis

from app.db import Queryable


async def postgres(db: Queryable) -> None:
    await db.fetchval("SELECT 1")


async def redis(client: Redis) -> None:
    await client.ping()
