"""The revocation feed: Redis pub/sub keeps this worker's copy current and acknowledges what
it applied, so that whoever published a revocation knows when every worker has it.

On every (re)connection: subscribe, make sure Redis holds the state (rebuild it from
PostgreSQL if it was lost), load the snapshot, then trust the copy; a revocation published in
between is applied twice, which is harmless. Entries are never dropped on reconnect
(revocations are never undone), only by their TTL.

Trust is a deadline: every HEARTBEAT a PING goes down the subscription, and its PONG, which
Redis sends after every message published before the PING, moves the deadline to the PING's
send time + TRUST_WINDOW. So TRUST_WINDOW after any revocation was published, every worker
has applied it or stopped trusting its copy (and asks Redis). The subscription has its own
connection with retries off: a drop surfaces here at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from app.revocation import messages
from app.revocation.mirror import RevocationMirror
from app.revocation.rebuild import Rebuilder
from app.revocation.store import RevocationStore

log = logging.getLogger("app.revocation")

# A heartbeat every HEARTBEAT seconds keeps a worker's copy trusted for TRUST_WINDOW seconds
# from the heartbeat's start. A revocation waits up to ACK_TIMEOUT for every subscribed
# worker's ack; by then a worker that has not applied it has stopped trusting its copy.
HEARTBEAT = 0.5
TRUST_WINDOW = 1.5
ACK_TIMEOUT = TRUST_WINDOW + 0.25
RESEED_RETRY = 5.0


class RevocationFeed:
    def __init__(
        self, url: str, store: RevocationStore, mirror: RevocationMirror, rebuild: Rebuilder
    ):
        self.url = url
        self.store = store
        self.mirror = mirror
        self.rebuild = rebuild
        self._pending: dict[str, Acks] = {}
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

    @contextlib.asynccontextmanager
    async def acknowledged(self, revocation_id: str) -> AsyncIterator[Acks]:
        """Collect the acks of one revocation (entered before it is published)."""
        waiter = Acks()
        self._pending[revocation_id] = waiter
        try:
            yield waiter
        finally:
            del self._pending[revocation_id]

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
            await pubsub.subscribe(self.store.events, self.store.acks)
            seeded = await self.rebuild.ensure()
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
                        if seeded := await self.rebuild.ensure():
                            await self._load_snapshot()
                elif ping_sent is not None and now - ping_sent > TRUST_WINDOW:
                    raise TimeoutError("no PONG on the revocation subscription")
                message = await pubsub.get_message(
                    ignore_subscribe_messages=True, timeout=HEARTBEAT / 2
                )
                if message is None:
                    continue
                if message["type"] == "pong":
                    # Only a copy loaded from a Redis that holds the whole state is trusted:
                    # until the rebuild succeeds, an empty copy would accept revoked tokens.
                    if ping_sent is not None and seeded:
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

    async def _load_snapshot(self) -> None:
        async for sid in self.store.revoked_sessions():
            self.mirror.revoke_session(sid)
        async for user_id, version in self.store.lowest_versions():
            self.mirror.set_lowest_version(user_id, version)
        self.mirror.set_not_before(await self.store.not_before())

    async def _handle(self, channel: str, data: str) -> None:
        if channel == self.store.acks:
            waiter = self._pending.get(messages.decode_ack(data))
            if waiter is not None:
                waiter.received += 1
                waiter.check()
            return
        revocation = messages.decode(data)
        for sid in revocation.sessions:
            self.mirror.revoke_session(sid)
        for user_id, version in revocation.users:
            self.mirror.set_lowest_version(user_id, version)
        if revocation.not_before is not None:
            self.mirror.set_not_before(revocation.not_before)
        await self.store.acknowledge(revocation.id)


class Acks:
    """The acknowledgements of one revocation, counted as they arrive."""

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
