"""Redis state for tokens: used refresh-token marks, revoked sessions, per-user "not before".

Every key is named by a `jti`, `sid` or user id, never by a token, and carries a TTL no
longer than the tokens it speaks of can live, so the state never grows without bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.revocations import RevocationMirror
from app.tokens import AccessClaims

log = logging.getLogger("app.revocation")

# Clock skew between the servers that issue and check tokens, added to every revocation TTL.
SKEW = 60
# The revocation feed: a heartbeat every HEARTBEAT seconds keeps a worker's in-process copy
# trusted for TRUST_WINDOW seconds from the heartbeat's start. A revocation waits up to
# ACK_TIMEOUT for every subscribed worker's ack; by then a worker that has not applied it has
# stopped trusting its copy.
HEARTBEAT = 0.5
TRUST_WINDOW = 1.5
ACK_TIMEOUT = TRUST_WINDOW + 0.25
RESEED_RETRY = 5.0


class RevocationStore:
    def __init__(self, redis: Redis, *, prefix: str, access_ttl: int):
        self.redis = redis
        self.prefix = prefix
        self._used = f"{prefix}used:"
        self._session = f"{prefix}revoked:sid:"
        self._not_before = f"{prefix}notbefore:user:"
        self.events = f"{prefix}revocations"
        self._seeded = f"{prefix}revocations:seeded"
        # Every access token issued before a revocation is dead one access lifetime later.
        self.revoked_ttl = access_ttl + SKEW
        self.feed: RevocationFeed | None = None  # set when this worker follows the feed

    def session_key(self, sid: str) -> str:
        return self._session + sid

    def user_key(self, user_id: str) -> str:
        return self._not_before + user_id

    # -- refresh tokens -----------------------------------------------------------

    async def mark_used(self, jti: str, ttl: int, at: float) -> float | None:
        """Mark refresh token `jti` used at `at`. None if this call marked it; else when the
        mark it found was made (the time its writer sent it, even if it landed later)."""
        previous = await self.redis.set(
            self._used + jti, repr(at), nx=True, get=True, ex=max(1, ttl)
        )
        return None if previous is None else float(previous)

    async def unmark_used(self, jti: str) -> None:
        await self.redis.delete(self._used + jti)

    # -- access tokens ------------------------------------------------------------

    async def revoke(
        self, sids: list[str], *, user_id: str | None = None, not_before: int | None = None
    ) -> None:
        """Refuse the access tokens of `sids`, and of `user_id` issued before `not_before`.

        Stored in Redis and published to every worker; when this worker follows the feed, it
        returns only once every subscribed worker has applied it (or after ACK_TIMEOUT), so
        the very next request is refused wherever it lands.
        """
        items = [f"s:{sid}" for sid in sids]
        if user_id is not None and not_before is not None:
            items.append(f"u:{user_id}:{not_before}")
        if not items:
            return
        message_id = uuid.uuid4().hex
        feed = self.feed
        async with contextlib.AsyncExitStack() as stack:
            acks = await stack.enter_async_context(feed.acknowledged(message_id)) if feed else None
            async with self.redis.pipeline(transaction=False) as pipe:
                for sid in sids:
                    pipe.set(self._session + sid, "1", ex=self.revoked_ttl)
                if user_id is not None and not_before is not None:
                    pipe.set(self._not_before + user_id, str(not_before), ex=self.revoked_ttl)
                pipe.publish(self.events, f"{message_id}|{','.join(items)}")
                receivers = (await pipe.execute())[-1]
            if acks is not None and receivers and not await acks.wait(receivers, ACK_TIMEOUT):
                # Some worker did not answer (or our own subscription is down, so its acks
                # can't reach us): by now every such worker asks Redis instead of its copy.
                log.warning(
                    "revocation %s: %d of %d workers acknowledged within %.2f s",
                    message_id,
                    acks.received,
                    receivers,
                    ACK_TIMEOUT,
                )

    # -- rebuilding after a Redis that lost its data ---------------------------------

    async def is_seeded(self) -> bool:
        """False when Redis has lost (or never had) the revocation state: a restart without
        persistence, a flush. The marker key has no TTL, so it goes exactly when data does."""
        return bool(await self.redis.exists(self._seeded))

    async def restore(
        self, sessions: list[tuple[str, int]], users: list[tuple[str, int, int]]
    ) -> None:
        """Write back revocations recorded in PostgreSQL, each with its remaining TTL."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, remaining in sessions:
                pipe.set(self._session + sid, "1", ex=remaining)
            for user_id, not_before, remaining in users:
                pipe.set(self._not_before + user_id, str(not_before), ex=remaining)
            pipe.set(self._seeded, "1")
            await pipe.execute()

    async def is_revoked(self, claims: AccessClaims) -> bool | None:
        """One round trip: is the token's session revoked, or was it issued before its user's
        "not before" (a password change, log out everywhere, a disabled account)? None when
        Redis has lost its revocation state (see `is_seeded`): rebuild it, then ask again."""
        session, not_before, seeded = await self.redis.mget(
            self._session + claims.sid, self._not_before + claims.sub, self._seeded
        )
        if session is not None or (not_before is not None and claims.iat < int(not_before)):
            return True
        return False if seeded is not None else None


class RevocationFeed:
    """Keeps a `RevocationMirror` current from Redis pub/sub, and acknowledges what it applied.

    On every (re)connection: subscribe, load the snapshot of revocation keys, then trust the
    mirror; a revocation published in between is applied twice, which is harmless. Entries
    are never dropped on reconnect (revocations are never undone), only by their TTL.

    Trust is a deadline: every HEARTBEAT a PING goes down the subscription, and its PONG,
    which Redis sends after every message published before the PING, moves the deadline to
    the PING's send time + TRUST_WINDOW. So TRUST_WINDOW after any revocation was published,
    every worker has applied it or stopped trusting its copy (and asks Redis). The
    subscription has its own connection with retries off: a drop surfaces here at once.
    """

    def __init__(
        self,
        url: str,
        store: RevocationStore,
        mirror: RevocationMirror,
        reseed: Callable[[], Awaitable[None]] | None = None,
    ):
        self.url = url
        self.store = store
        self.mirror = mirror
        self.reseed = reseed  # rebuilds Redis from PostgreSQL when Redis has lost its data
        self.events = store.events
        self.acks = f"{store.events}:acks"
        self._pending: dict[str, _Acks] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="revocation-feed")

    async def stop(self) -> None:
        self._stopping = True
        self.mirror.distrust()
        if self._task is None:
            return
        # redis-py's get_message can swallow a cancellation; the loop also checks the flag,
        # so the task ends within one turn (HEARTBEAT / 2) either way.
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await asyncio.wait_for(self._task, timeout=5)

    async def _run(self) -> None:
        delay = 0.1
        while not self._stopping:
            started = time.monotonic()
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as error:  # noqa: BLE001 - any failure: distrust, back off, retry
                if self.mirror.trusted:
                    log.warning("revocation feed lost (%r); asking Redis until it is back", error)
            self.mirror.distrust()
            if time.monotonic() - started > 10:
                delay = 0.1  # it was up for a while: reconnect quickly
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    async def _follow(self) -> None:
        client = Redis.from_url(
            self.url, retry=Retry(NoBackoff(), 0), socket_connect_timeout=2, socket_timeout=5
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.events, self.acks)
            seeded = await self._seed()
            await self._load_snapshot()
            ping_sent: float | None = None
            last_ping, last_seed = 0.0, time.monotonic()
            while not self._stopping:
                now = time.monotonic()
                if ping_sent is None and now - last_ping >= HEARTBEAT:
                    ping_sent = last_ping = now
                    await pubsub.ping()
                    if not seeded and now - last_seed >= RESEED_RETRY:
                        last_seed = now
                        if seeded := await self._seed():
                            await self._load_snapshot()
                elif ping_sent is not None and now - ping_sent > TRUST_WINDOW:
                    raise TimeoutError("no PONG on the revocation subscription")
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=HEARTBEAT / 2
                )
                if message is None:
                    continue
                if message["type"] == "pong":
                    if ping_sent is not None:
                        self.mirror.trust_until(ping_sent + TRUST_WINDOW)
                        ping_sent = None
                    continue
                await self._handle(message["channel"].decode(), message["data"].decode())
        finally:
            self.mirror.distrust()
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _seed(self) -> bool:
        """Make sure Redis holds the revocations PostgreSQL recorded; False if it could not
        (PostgreSQL down): tried again every RESEED_RETRY while the feed runs."""
        if self.reseed is None or await self.store.is_seeded():
            return True
        try:
            await self.reseed()
        except Exception as error:  # noqa: BLE001 - PostgreSQL down: retry later
            log.warning("could not rebuild revocations from PostgreSQL: %r", error)
            return False
        log.info("Redis had no revocation state: rebuilt it from PostgreSQL")
        return True

    async def _load_snapshot(self) -> None:
        redis = self.store.redis
        async for key in redis.scan_iter(match=self.store.session_key("*"), count=1000):
            self.mirror.revoke_session(key.rsplit(":", 1)[1])
        keys = [k async for k in redis.scan_iter(match=self.store.user_key("*"), count=1000)]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            for key, value in zip(chunk, await redis.mget(chunk), strict=True):
                if value is not None:
                    self.mirror.set_not_before(key.rsplit(":", 1)[1], int(value))

    async def _handle(self, channel: str, data: str) -> None:
        if channel == self.acks:
            waiter = self._pending.get(data)
            if waiter is not None:
                waiter.received += 1
                waiter.check()
            return
        message_id, _, body = data.partition("|")
        for item in body.split(","):
            kind, _, rest = item.partition(":")
            if kind == "s":
                self.mirror.revoke_session(rest)
            elif kind == "u":
                user_id, _, not_before = rest.partition(":")
                self.mirror.set_not_before(user_id, int(not_before))
        await self.store.redis.publish(self.acks, message_id)

    @contextlib.asynccontextmanager
    async def acknowledged(self, message_id: str) -> AsyncIterator[_Acks]:
        """Collect the acks of one published revocation (registered before it is published)."""
        waiter = _Acks()
        self._pending[message_id] = waiter
        try:
            yield waiter
        finally:
            del self._pending[message_id]


class _Acks:
    def __init__(self) -> None:
        self.received = 0
        self.expected: int | None = None
        self.done = asyncio.Event()

    def check(self) -> None:
        if self.expected is not None and self.received >= self.expected:
            self.done.set()

    async def wait(self, expected: int, seconds: float) -> bool:
        self.expected = expected
        self.check()
        try:
            async with asyncio.timeout(seconds):
                await self.done.wait()
        except TimeoutError:
            return False
        return True
