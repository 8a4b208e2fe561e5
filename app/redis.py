"""The Redis client of one worker: opened before the server starts, closed after it stops.

One Redis (`REDIS_URL`, `rediss://` for TLS), a Redis Cluster (`REDIS_CLUSTER_NODES`,
redis-py's `RedisCluster`) or a Sentinel set-up (`REDIS_SENTINELS` + `REDIS_SENTINEL_MASTER`,
redis-py's `Sentinel.master_for`): `open_redis` gives each the same commands. Every multi-key
step of the service keeps its keys in one hash slot, so it runs on all three.
"""

from __future__ import annotations

import logging
from typing import Any, TypeAlias

import redis.exceptions
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import NoBackoff
from sanic import Request, Sanic

from app.config import ConfigError, Settings, location

# What the stores are given: both answer the same commands (and pipelines) on the same keys.
RedisClient: TypeAlias = Redis | RedisCluster

log = logging.getLogger("app.redis")

SOCKET_TIMEOUT = 2.0


def describe(settings: Settings) -> str:
    """Where Redis is, for a log line (never a password)."""
    if settings.redis_cluster_nodes:
        return "the Redis Cluster at " + ",".join(
            f"{h}:{p}" for h, p in settings.redis_cluster_nodes
        )
    if settings.redis_sentinels:
        sentinels = ",".join(f"{h}:{p}" for h, p in settings.redis_sentinels)
        return f"the Redis master {settings.redis_sentinel_master!r} of the Sentinels {sentinels}"
    return f"Redis at {location(settings.redis_url)}"


def open_redis(
    settings: Settings, *, max_connections: int = 64, retries: bool = True
) -> RedisClient:
    """A client of the configured Redis. `retries=False`: one attempt per command, for the
    revocation feed, which must see a dropped connection at once."""
    common: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": SOCKET_TIMEOUT,
        "socket_connect_timeout": SOCKET_TIMEOUT,
    }
    if not retries:
        common["retry"] = Retry(NoBackoff(), 0)
    if settings.redis_cluster_nodes:
        # redis-py follows MOVED/ASK and failovers itself; max_connections is per node.
        if not retries:
            common["cluster_error_retry_attempts"] = 0
        cluster: RedisCluster = RedisCluster(
            startup_nodes=[ClusterNode(host, port) for host, port in settings.redis_cluster_nodes],
            max_connections=max_connections,
            **common,
        )
        return cluster
    if settings.redis_sentinels:
        sentinel = Sentinel(  # type: ignore[no-untyped-call]
            list(settings.redis_sentinels),
            sentinel_kwargs={"socket_timeout": SOCKET_TIMEOUT},
            socket_timeout=SOCKET_TIMEOUT,
        )
        assert settings.redis_sentinel_master is not None  # checked by Settings
        master: Redis = sentinel.master_for(
            settings.redis_sentinel_master, max_connections=max_connections, **common
        )
        return master
    return _single(settings.redis_url, max_connections, common)


def _single(url: str, max_connections: int, common: dict[str, Any]) -> Redis:
    # No connection is made here: the worker starts while Redis is down, and /health says so.
    # A blocking pool waits (bounded) for a free connection under load instead of failing.
    extra = {key: value for key, value in common.items() if key == "retry"}
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        max_connections=max_connections,
        timeout=SOCKET_TIMEOUT,
    )
    return Redis(connection_pool=pool, **extra)


async def check_eviction(client: RedisClient) -> None:
    """Refuse a Redis that may evict keys: it could drop revocation marks while the marker
    that says "the state is whole" stays, and revoked tokens would work again. Where CONFIG
    is not allowed (managed Redis), or Redis is down at start, say so once and go on."""
    try:
        if isinstance(client, RedisCluster):  # every master answers for itself
            replies = await client.config_get(
                "maxmemory-policy", target_nodes=RedisCluster.PRIMARIES
            )
            policies = {reply.get("maxmemory-policy") for reply in _per_node(replies)}
            policy = next((p for p in policies if p not in (None, "noeviction")), None)
        else:
            policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy")
    except redis.exceptions.ResponseError as error:
        log.warning("could not read Redis maxmemory-policy (%s): make sure it is noeviction", error)
        return
    except (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        redis.exceptions.RedisClusterException,  # no node of the cluster answers
        redis.exceptions.ClusterError,
        OSError,
    ):
        return  # said once, by the main process (`_probe`); checked by a later start
    if policy not in (None, "noeviction"):
        raise ConfigError(
            f"Redis maxmemory-policy is {policy!r}: it may evict revocation marks; set it to"
            " noeviction (redis.conf `maxmemory-policy noeviction`)"
        )


def _per_node(replies: Any) -> list[dict[str, str]]:
    """A cluster command sent to several nodes answers per node (or merged, when one)."""
    if isinstance(replies, dict) and replies and all(isinstance(v, dict) for v in replies.values()):
        return list(replies.values())
    return [replies] if isinstance(replies, dict) else list(replies)


async def _open(app: Sanic[Any, Any]) -> None:
    app.ctx.redis = open_redis(app.ctx.settings)
    await check_eviction(app.ctx.redis)


async def _close(app: Sanic[Any, Any]) -> None:
    await app.ctx.redis.aclose()


def _redis(request: Request) -> RedisClient:
    redis: RedisClient = request.app.ctx.redis
    return redis


async def _probe(app: Sanic[Any, Any]) -> None:
    """Main process, once at start: a clear warning when Redis does not answer (the workers
    start anyway, and answer 503 until it does)."""
    client = open_redis(app.ctx.settings, max_connections=2)
    try:
        await client.ping()
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError) as error:
        log.warning(
            "%s does not answer (%s): requests that need it answer 503 until it"
            " does; its maxmemory-policy is not checked",
            describe(app.ctx.settings),
            error,
        )
    finally:
        await client.aclose()


def setup_redis(app: Sanic[Any, Any]) -> None:
    """Per worker: `app.ctx.redis`, the client every store of this worker shares (and that
    handlers may ask for as `redis: Redis`)."""
    app.main_process_start(_probe)
    app.before_server_start(_open)
    app.after_server_stop(_close)
    app.ext.add_dependency(Redis, _redis)
