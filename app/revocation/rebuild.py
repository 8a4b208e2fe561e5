"""Rebuilding the Redis revocation state from what PostgreSQL recorded, after Redis lost it."""

from __future__ import annotations

import logging

from app.db import Queryable
from app.revocation.store import RevocationStore
from app.stores import cut_offs, sessions, users

log = logging.getLogger("app.revocation")


class Rebuilder:
    def __init__(self, db: Queryable, store: RevocationStore):
        self.db = db
        self.store = store

    async def rebuild(self) -> None:
        """Sessions ended and users cut off within a revocation's lifetime, back into Redis."""
        ttl = self.store.revoked_ttl
        ended = await sessions.revoked_within(self.db, ttl)
        cut_off = await users.cut_off_within(self.db, ttl)
        await self.store.restore(ended, cut_off, await cut_offs.not_before_within(self.db, ttl))

    async def ensure(self) -> bool:
        """Make sure Redis holds the revocation state; False if it could not be rebuilt
        (PostgreSQL down)."""
        if await self.store.is_seeded():
            return True
        try:
            await self.rebuild()
        except Exception as error:  # noqa: BLE001 - PostgreSQL down: the caller retries later
            log.warning("could not rebuild revocations from PostgreSQL: %r", error)
            return False
        log.info("Redis had no revocation state: rebuilt it from PostgreSQL")
        return True
