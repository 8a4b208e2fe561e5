"""Rebuilding the Redis revocation state from what PostgreSQL recorded, shard by shard, after
Redis lost it.

Once, not once per request: the requests of one worker that find a shard lost share one run,
and across workers and hosts a lock per shard lets one of them rebuild it while the others
wait for its marker. The queries are indexed (sessions_revoked_idx, users_cut_off_idx).
"""

from __future__ import annotations

import asyncio
import logging
import time

from app.db import Queryable
from app.errors import ServiceUnavailable
from app.revocation.store import Entry, RevocationStore, shard_of
from app.stores import cut_offs, sessions, users

log = logging.getLogger("app.revocation")

WAIT_FOR_OTHERS = 10.0  # seconds to wait for another worker's rebuild of a shard


class Rebuilder:
    def __init__(self, db: Queryable, store: RevocationStore):
        self.db = db
        self.store = store
        self._running: asyncio.Task[None] | None = None
        self.runs = 0  # rebuilds this worker did (for the tests and the logs)

    async def rebuild(self) -> None:
        """Rebuild every shard that lost its state. Concurrent callers share one run; raises
        when PostgreSQL (or Redis) is down, and the caller answers 503."""
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._rebuild(), name="revocation-rebuild")
        await asyncio.shield(self._running)

    async def ensure(self) -> bool:
        """Make sure Redis holds the revocation state; False if it could not be rebuilt
        (PostgreSQL down)."""
        try:
            await self.rebuild()
        except Exception as error:  # noqa: BLE001 - PostgreSQL down: the caller retries later
            log.warning("could not rebuild revocations from PostgreSQL: %r", error)
            return False
        return True

    async def _rebuild(self) -> None:
        missing = await self.store.missing()
        if not missing:
            return
        mine = {n for n in missing if await self.store.lock_rebuild(n)}
        try:
            if mine:
                await self._restore(mine)
                self.runs += 1
                log.info(
                    "Redis had lost the revocation state of %d of its shards: rebuilt them"
                    " from PostgreSQL",
                    len(mine),
                )
        finally:
            for n in mine:
                await self.store.unlock_rebuild(n)
        others = set(missing) - mine  # being rebuilt by another worker: wait for its markers
        deadline = time.monotonic() + WAIT_FOR_OTHERS
        while others:
            if time.monotonic() > deadline:
                raise ServiceUnavailable(
                    f"{len(others)} revocation shards are being rebuilt elsewhere; try again."
                )
            await asyncio.sleep(0.1)
            others &= set(await self.store.missing())

    async def _restore(self, shards: set[int]) -> None:
        ttl = self.store.revoked_ttl
        ended = await sessions.revoked_within(self.db, ttl)
        cut_off = await users.cut_off_within(self.db, ttl)
        not_before = await cut_offs.not_before_within(self.db, ttl)
        entries = [Entry("s", sid, 1, left) for sid, left in ended if shard_of(sid) in shards]
        entries += [
            Entry("u", user, version, left)
            for user, version, left in cut_off
            if shard_of(user) in shards
        ]
        if not_before is not None:
            entries.append(Entry("g", "", not_before, self.store.cut_off_ttl(not_before)))
        await self.store.write(entries, whole=shards, only=shards, replicate=False)
