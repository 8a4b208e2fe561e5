"""The cheapest question each dependency answers: for readiness checks."""

from __future__ import annotations

from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ClusterDownError

from app.db import Queryable
from app.redis import RedisClient


async def schema_version(db: Queryable) -> str | None:
    """The newest migration applied to the database; None when it was never migrated."""
    if not await db.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL"):
        return None
    version: str | None = await db.fetchval("SELECT max(version) FROM schema_migrations")
    return version


async def redis(client: RedisClient) -> None:
    """A PING; of a Redis Cluster, its state: every node answers PING while slots have no
    master and every key command fails (CLUSTERDOWN)."""
    if isinstance(client, RedisCluster):
        state = (await client.cluster_info()).get("cluster_state")
        if state != "ok":
            raise ClusterDownError(f"cluster_state:{state}")
        return
    await client.ping()
