"""The Redis client of one worker: opened before the server starts, closed after it stops."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis

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
