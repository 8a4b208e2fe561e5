"""Revoking access tokens before they expire, on every worker at once.

`Revocations` is this worker's view of the state: it answers "is this token revoked?" from
the in-process copy while that is trusted, else from Redis (rebuilding the shards Redis lost
first), and it publishes revocations and waits until every live worker has applied them.
`setup_revocation(app)` builds it per worker and starts and stops its feed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

from sanic import Sanic

from app.config import Settings
from app.db import Queryable
from app.errors import ServiceUnavailable
from app.observability import count
from app.redis import RedisClient, open_redis
from app.revocation.feed import ACK_TIMEOUT, RevocationFeed
from app.revocation.messages import Revocation
from app.revocation.mirror import RevocationMirror
from app.revocation.rebuild import Rebuilder
from app.revocation.store import RevocationStore
from app.tokens import AccessClaims

log = logging.getLogger("app.revocation")


class Revocations:
    def __init__(
        self,
        store: RevocationStore,
        mirror: RevocationMirror,
        feed: RevocationFeed,
        rebuild: Rebuilder,
    ):
        self.store = store
        self.mirror = mirror
        self.feed = feed
        self.rebuild = rebuild
        self.revoked_ttl = store.revoked_ttl

    def check_copy(self, claims: AccessClaims) -> bool | None:
        """From the in-process copy, no I/O: None while the copy can't be trusted."""
        return self.mirror.check(claims)

    async def check_redis(self, claims: AccessClaims) -> bool:
        """From Redis; if Redis lost its data (restart, flush), rebuild it first."""
        revoked = await self.store.is_revoked(claims)
        if revoked is None:
            await self.rebuild.rebuild()  # PostgreSQL down: it raises, and the answer is a 503
            revoked = await self.store.is_revoked(claims)
        if revoked is None:  # lost again at once: no answer can be trusted
            raise ServiceUnavailable("The revocation state is being rebuilt; try again.")
        return revoked

    async def unmarked(self, sids: list[str]) -> list[str]:
        """The sessions among `sids` whose revocation Redis does not hold (yet)."""
        return await self.store.unmarked(sids)

    async def revoke(
        self,
        sids: list[str],
        *,
        user_id: str | None = None,
        version: int | None = None,
        not_before: int | None = None,
    ) -> None:
        """Refuse the access tokens of `sids`, of `user_id` below token `version`, and with
        `not_before`, every token issued before then (revoke-all).

        Stored in Redis and published to every worker; returns once every subscribed worker
        has applied it (or after ACK_TIMEOUT), so the very next request is refused wherever
        it lands.
        """
        users = ((user_id, version),) if user_id is not None and version is not None else ()
        revocation = Revocation(tuple(sids), users, not_before=not_before)
        if not revocation:
            return
        if sids:
            count("revocations", "session", by=len(sids))
        if users:
            count("revocations", "user")
        if not_before is not None:
            count("revocations", "all")
        async with self.feed.acknowledged(revocation.id) as acks:
            # Stored first, then told, then waited for, all before the answer: a worker that
            # subscribes after the message loads a snapshot that has it, one that trusts its
            # copy has it from the message (or stops trusting within TRUST_WINDOW of the
            # publish: the wait is counted from there), one that asks Redis finds the marks.
            # A session's mark says "published" only once that wait is over: if a step fails
            # the caller answers 503, and a retry (or the user's next login), even one that
            # overtakes this request, publishes again what Redis does not hold as published.
            try:
                await self.store.write(
                    self.store.entries(revocation.sessions, revocation.users, not_before)
                )
                expected = await self.feed.announce(revocation)
            except Exception:
                count("revocation_publishes", "failed")
                raise
            if self.feed.worker not in expected:
                # Not even this worker's own registration: the registry was lost (a flush, a
                # failover) or this worker's feed is down, and who trusts a copy is unknown:
                # wait until any copy that missed this revocation has lapsed.
                count("revocation_publishes", "unacknowledged")
                await asyncio.sleep(ACK_TIMEOUT)
            elif await acks.wait(expected, ACK_TIMEOUT):
                count("revocation_publishes", "acknowledged")
            else:
                count("revocation_publishes", "unacknowledged")
                # Some worker did not answer: by now every such worker asks Redis instead.
                log.warning(
                    "revocation %s: %d of %d live workers acknowledged within %.2f s",
                    revocation.id,
                    len(acks.workers & expected),
                    len(expected),
                    ACK_TIMEOUT,
                )
        if revocation.sessions:
            try:
                await self.store.published(revocation.sessions)
            except Exception as error:  # noqa: BLE001 - in force anyway; a retry republishes
                log.warning("revocation %s: marks not set as published: %r", revocation.id, error)


def build_revocations(settings: Settings, redis: RedisClient, db: Queryable) -> Revocations:
    store = RevocationStore(
        redis,
        prefix=settings.redis_key_prefix,
        access_ttl=settings.access_token_ttl,
        clock_skew=settings.clock_skew,
        wait_replicas=settings.redis_wait_replicas,
    )
    mirror = RevocationMirror(store.revoked_ttl)
    rebuild = Rebuilder(db, store)
    feed = RevocationFeed(settings, store, mirror, rebuild)
    return Revocations(store, mirror, feed, rebuild)


async def open_revocations(app: Sanic[Any, Any]) -> None:
    app.ctx.revocations = build_revocations(app.ctx.settings, app.ctx.redis, app.ctx.db)
    app.ctx.revocations.feed.start()


@contextlib.asynccontextmanager
async def standalone_revocations(settings: Settings, db: Queryable) -> AsyncIterator[Revocations]:
    """Revocations for a process that is no worker (the command line): its feed follows the
    workers' until it is done, so that what it revokes is acknowledged like a worker's."""
    redis = open_redis(settings, max_connections=4)
    revocations = build_revocations(settings, redis, db)
    revocations.feed.start()
    try:
        for _ in range(100):  # up to 5 s for the feed to be subscribed (its acks reach us)
            if revocations.mirror.trusted:
                break
            await asyncio.sleep(0.05)
        yield revocations
    finally:
        await revocations.feed.stop()
        await redis.aclose()


async def close_revocations(app: Sanic[Any, Any]) -> None:
    await app.ctx.revocations.feed.stop()


def setup_revocation(app: Sanic[Any, Any]) -> None:
    """Per worker, after the pools: `app.ctx.revocations`, and its feed running."""
    app.before_server_start(open_revocations)
    app.after_server_stop(close_revocations)
