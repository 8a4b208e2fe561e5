"""The PostgreSQL pool of one worker: opened before the server starts, closed after it stops."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, Protocol

import asyncpg
from sanic import Request, Sanic

from app.config import location

log = logging.getLogger("app.db")

# Short, so that an outage answers 503 within a few seconds instead of hanging.
CONNECT_TIMEOUT = 2.0
ACQUIRE_TIMEOUT = 2.5
COMMAND_TIMEOUT = 2.5


class Queryable(Protocol):
    """What the stores need: a `Database`, or an `asyncpg.Connection` inside a transaction."""

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]: ...
    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None: ...
    async def fetchval(self, query: str, *args: Any) -> Any: ...
    async def execute(self, query: str, *args: Any) -> str: ...


class Database:
    """A thin wrapper over an asyncpg pool that puts a timeout on every step."""

    def __init__(self, pool: asyncpg.Pool):
        self.pool = pool

    @classmethod
    async def open(cls, dsn: str, *, max_size: int = 10) -> Database:
        # min_size=0: the worker starts even while PostgreSQL is down, and /health says so.
        pool = await asyncpg.create_pool(
            dsn,
            min_size=0,
            max_size=max_size,
            timeout=CONNECT_TIMEOUT,
            command_timeout=COMMAND_TIMEOUT,
            max_inactive_connection_lifetime=300,
        )
        return cls(pool)

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire(timeout=ACQUIRE_TIMEOUT) as connection:
            try:
                yield connection
            except (OSError, TimeoutError, asyncpg.InterfaceError, asyncio.CancelledError):
                # A query cut off by a timeout or a cancel: a graceful release would first
                # send the server a cancel request and wait for it, which a hung server never
                # answers. Drop the connection instead; the pool opens a fresh one.
                connection.terminate()
                raise

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.connection() as connection, connection.transaction():
            yield connection

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        async with self.connection() as connection:
            rows: list[asyncpg.Record] = await connection.fetch(query, *args)
            return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        async with self.connection() as connection:
            return await connection.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: Any) -> Any:
        async with self.connection() as connection:
            return await connection.fetchval(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        async with self.connection() as connection:
            status: str = await connection.execute(query, *args)
            return status


async def _open(app: Sanic[Any, Any]) -> None:
    app.ctx.db = await Database.open(app.ctx.settings.database_url)


async def _close(app: Sanic[Any, Any]) -> None:
    await app.ctx.db.close()


def _database(request: Request) -> Database:
    db: Database = request.app.ctx.db
    return db


async def _probe(app: Sanic[Any, Any]) -> None:
    """Main process, once at start: a clear warning when PostgreSQL does not answer (the
    workers start anyway, and answer 503 until it does)."""
    dsn = app.ctx.settings.database_url
    try:
        connection = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT)
        await connection.close()
    except Exception as error:  # noqa: BLE001 - any failure: say it, and go on
        log.warning(
            "PostgreSQL at %s does not answer (%s): requests that need it answer 503 until it does",
            location(dsn),
            error,
        )


def setup_database(app: Sanic[Any, Any]) -> None:
    """Per worker: `app.ctx.db`, and `db: Database` injected into the handlers that ask."""
    app.main_process_start(_probe)
    app.before_server_start(_open)
    app.after_server_stop(_close)
    app.ext.add_dependency(Database, _database)
