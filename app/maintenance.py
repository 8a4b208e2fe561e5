"""Bounded data: the purge of sessions no token can need any more and of audit events past
`AUDIT_RETENTION`, in batches; run by `jwt-refresh-api purge` and, every `PURGE_INTERVAL`,
by exactly one worker of all hosts.

Each worker looks now and then whether the purge is due. One PostgreSQL advisory lock keeps
two purges from running at once (the command line's included), and a conditional update of
the job's `last_run` lets only one worker of all hosts run it per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from dataclasses import dataclass
from typing import Any

import asyncpg
from sanic import Sanic

from app.config import Settings
from app.db import Database
from app.observability import count
from app.stores import events
from app.stores import sessions as session_rows

log = logging.getLogger("app.maintenance")

PURGE_JOB = "purge"
PURGE_LOCK = 0x6A77_7472_7075_7267  # the advisory lock of the purge ("jwtrpurg")
BATCH = 1000
LOOK_EVERY = 60.0  # seconds between looks at most, whatever the interval


@dataclass(frozen=True, slots=True)
class Purged:
    sessions: int
    events: int


def session_horizon(settings: Settings) -> int:
    """Seconds after a session ended or expired until no token it issued can be unexpired:
    the longest token lifetime plus the clock skew any host may have."""
    return max(settings.access_token_ttl, settings.refresh_token_ttl) + settings.clock_skew


async def purge(conn: asyncpg.Connection, settings: Settings, batch: int = BATCH) -> Purged:
    """Delete what may go, `batch` rows per statement, until nothing is left to delete."""
    horizon = session_horizon(settings)
    totals = {"sessions": 0, "events": 0}
    while (deleted := await session_rows.purge(conn, horizon, batch)) > 0:
        totals["sessions"] += deleted
        if deleted < batch:
            break
    while (deleted := await events.purge(conn, settings.audit_retention, batch)) > 0:
        totals["events"] += deleted
        if deleted < batch:
            break
    return Purged(**totals)


async def purge_now(db: Database, settings: Settings) -> Purged | None:
    """The command line's purge: at once, unless another purge is running (None)."""
    async with db.connection() as conn:
        return await _locked(conn, settings, due_every=None)


async def purge_if_due(db: Database, settings: Settings) -> Purged | None:
    """The periodic purge, when no other worker of any host ran it in the last interval."""
    async with db.connection() as conn:
        return await _locked(conn, settings, due_every=settings.purge_interval)


async def _locked(
    conn: asyncpg.Connection, settings: Settings, *, due_every: int | None
) -> Purged | None:
    if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", PURGE_LOCK):
        return None
    try:
        claimed = await conn.fetchval(
            "INSERT INTO maintenance (job, last_run) VALUES ($1, now())"
            " ON CONFLICT (job) DO UPDATE SET last_run = now()"
            " WHERE $2::float8 IS NULL"
            " OR maintenance.last_run <= now() - make_interval(secs => $2::float8)"
            " RETURNING true",
            PURGE_JOB,
            float(due_every) if due_every is not None else None,
        )
        if not claimed:
            return None
        purged = await purge(conn, settings)
    finally:
        with contextlib.suppress(Exception):
            await conn.fetchval("SELECT pg_advisory_unlock($1)", PURGE_LOCK)
    count("purges")
    log.info("purge: %d sessions and %d events deleted", purged.sessions, purged.events)
    return purged


async def _periodically(app: Sanic[Any, Any]) -> None:
    settings: Settings = app.ctx.settings
    look = min(float(settings.purge_interval), LOOK_EVERY)
    failing = False
    while True:
        await asyncio.sleep(look * random.uniform(0.5, 1.0))  # noqa: S311 - spreading, not secrets
        try:
            await purge_if_due(app.ctx.db, settings)
            failing = False
        except Exception as error:  # noqa: BLE001 - an outage: try again at the next look
            if not failing:
                log.warning("purge: not run (%r); trying again later", error)
            failing = True


async def _start(app: Sanic[Any, Any]) -> None:
    if app.ctx.settings.purge_interval:
        app.ctx.purger = asyncio.get_running_loop().create_task(_periodically(app))


async def _stop(app: Sanic[Any, Any]) -> None:
    purger = getattr(app.ctx, "purger", None)
    if purger is not None:
        purger.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await purger


def setup_maintenance(app: Sanic[Any, Any]) -> None:
    """Per worker, after the pools: the periodic purge (none while PURGE_INTERVAL is 0)."""
    app.after_server_start(_start)
    app.before_server_stop(_stop)
