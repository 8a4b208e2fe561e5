"""The Redis client of one worker: opened before the server starts, closed after it stops."""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from redis.asyncio import BlockingConnectionPool, Redis
from sanic import Request, Sanic

from app.config import ConfigError, location

log = logging.getLogger("app.redis")

SOCKET_TIMEOUT = 2.0


def open_redis(url: str, *, max_connections: int = 64) -> Redis:
    # No connection is made here: the worker starts while Redis is down, and /health says so.
    # A blocking pool waits (bounded) for a free connection under load instead of failing.
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT,
        health_check_interval=30,
        max_connections=max_connections,
        timeout=SOCKET_TIMEOUT,
    )
    return Redis(connection_pool=pool)


async def check_eviction(client: Redis) -> None:
    """Refuse a Redis that may evict keys: it could drop revocation marks while the marker
    that says "the state is whole" stays, and revoked tokens would work again. Where CONFIG
    is not allowed (managed Redis), or Redis is down at start, say so once and go on."""
    try:
        policy = (await client.config_get("maxmemory-policy")).get("maxmemory-policy")
    except redis.exceptions.ResponseError as error:
        log.warning("could not read Redis maxmemory-policy (%s): make sure it is noeviction", error)
        return
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
        return  # said once, by the main process (`_probe`); checked by a later start
    if policy not in (None, "noeviction"):
        raise ConfigError(
            f"Redis maxmemory-policy is {policy!r}: it may evict revocation marks; set it to"
            " noeviction (redis.conf `maxmemory-policy noeviction`)"
        )


async def _open(app: Sanic[Any, Any]) -> None:
    app.ctx.redis = open_redis(app.ctx.settings.redis_url)
    await check_eviction(app.ctx.redis)


async def _close(app: Sanic[Any, Any]) -> None:
    await app.ctx.redis.aclose()


def _redis(request: Request) -> Redis:
    redis: Redis = request.app.ctx.redis
    return redis


async def _probe(app: Sanic[Any, Any]) -> None:
    """Main process, once at start: a clear warning when Redis does not answer (the workers
    start anyway, and answer 503 until it does)."""
    url = app.ctx.settings.redis_url
    client = open_redis(url, max_connections=1)
    try:
        await client.ping()
    except (redis.exceptions.RedisError, OSError) as error:
        log.warning(
            "Redis at %s does not answer (%s): requests that need it answer 503 until it"
            " does; its maxmemory-policy is not checked",
            location(url),
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
