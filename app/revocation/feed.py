"""The revocation feed: Redis sharded pub/sub keeps this worker's copy current and
acknowledges what it applied, to the worker that asked only, so that whoever published a
revocation knows when every live worker has it.

On every (re)connection: subscribe, make sure Redis holds the state (rebuild the shards it
lost from PostgreSQL), load the snapshot, then trust the copy; a revocation published in
between is applied twice, which is harmless. Entries are never dropped on reconnect
(revocations are never undone), only by their age.

Trust is a deadline. Every HEARTBEAT the worker records itself in the registry of live workers
(a sorted set scored by Redis's own clock) and then publishes a beat, carrying its send time,
on its own channel. Every channel of the feed lives in one hash slot (messages.Channels), so
Redis delivers the messages of all of them to this subscription in the order it executed the
publishes: a beat arrives after every revocation published before it. Its arrival moves the
deadline to the beat's send time + TRUST_WINDOW. So TRUST_WINDOW after any revocation was
published, every worker has applied it or stopped trusting its copy (and asks Redis).

Whoever publishes a revocation reads, in the same round trip, the workers whose last
registration is younger than LEASE (>= TRUST_WINDOW): every worker whose copy may still be
trusted when the revocation answers is among them (its registration preceded its beat), and
those are the acknowledgements it waits for. Nothing is counted from PUBLISH's reply, which a
Redis Cluster counts per node. The subscription has its own client with retries off: a drop,
a failover or a slot moving away (an `sunsubscribe` from Redis) surfaces here at once, and the
copy is distrusted until it is reloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio.cluster import RedisCluster

from app.config import Settings
from app.redis import RedisClient, open_redis
from app.revocation import messages
from app.revocation.mirror import RevocationMirror
from app.revocation.rebuild import Rebuilder
from app.revocation.store import RevocationStore

log = logging.getLogger("app.revocation")

# A heartbeat every HEARTBEAT seconds keeps a worker's copy trusted for TRUST_WINDOW seconds
# from the heartbeat's start. A revocation waits up to ACK_TIMEOUT for every live worker's
# ack; by then a worker that has not applied it has stopped trusting its copy.
HEARTBEAT = 0.5
TRUST_WINDOW = 1.5
LEASE = TRUST_WINDOW + 1.0
ACK_TIMEOUT = TRUST_WINDOW + 0.25
RESEED_RETRY = 5.0
FORGET_WORKERS_AFTER = 60  # seconds: registrations older than this are deleted

# Record a worker as live, by Redis's clock (the same for every host), and forget the dead.
REGISTER = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# The workers registered within the last ARGV[1] seconds.
LIVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
return redis.call('ZRANGEBYSCORE', KEYS[1], now - tonumber(ARGV[1]), '+inf')
"""


class RevocationFeed:
    def __init__(
        self,
        settings: Settings,
        store: RevocationStore,
        mirror: RevocationMirror,
        rebuild: Rebuilder,
    ):
        self.settings = settings
        self.store = store
        self.mirror = mirror
        self.rebuild = rebuild
        self.worker = uuid.uuid4().hex
        self.channels = messages.channels(settings.redis_key_prefix)
        self._pending: dict[str, Acks] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._client: RedisClient | None = None

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="revocation-feed")

    async def stop(self) -> None:
        self._stopping = True
        self.mirror.distrust()
        if self._task is not None:
            # redis-py's get_message can swallow a cancellation; the loop also checks the
            # flag, so the task ends within one turn (HEARTBEAT / 2) either way.
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, timeout=5)
        with contextlib.suppress(Exception):  # nobody waits for a stopped worker's acks
            async with asyncio.timeout(1):
                await self.store.redis.zrem(self.channels.workers, self.worker)

    @contextlib.asynccontextmanager
    async def acknowledged(self, revocation_id: str) -> AsyncIterator[Acks]:
        """Collect the acks of one revocation (entered before it is published)."""
        waiter = Acks()
        self._pending[revocation_id] = waiter
        try:
            yield waiter
        finally:
            del self._pending[revocation_id]

    async def announce(self, revocation: messages.Revocation) -> set[str]:
        """Publish a revocation (asking for the acks on this worker's channel); the workers
        whose acknowledgement to wait for, read in the same round trip."""
        message = messages.encode(
            messages.Revocation(
                revocation.sessions,
                revocation.users,
                revocation.id,
                revocation.not_before,
                self.worker,
            )
        )
        async with self.store.redis.pipeline(transaction=False) as pipe:
            pipe.eval(LIVE, 1, self.channels.workers, LEASE)
            pipe.spublish(self.channels.events, message)
            live, _ = await pipe.execute()
        return set(live)

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
        client = open_redis(self.settings, max_connections=4, retries=False)
        self._client = client
        if isinstance(client, RedisCluster):
            await client.initialize()  # the slot map, which sharded subscriptions are routed by
        pubsub: Any = client.pubsub()
        beats = self.channels.beat(self.worker)
        try:
            await pubsub.ssubscribe(self.channels.events, beats, self.channels.ack(self.worker))
            seeded = await self.rebuild.ensure()
            await self._load_snapshot()
            last_beat, last_arrival, last_seed = 0.0, time.monotonic(), time.monotonic()
            while not self._stopping:
                now = time.monotonic()
                if now - last_beat >= HEARTBEAT:
                    last_beat = now
                    await self._beat(client, beats, now)
                    if now - last_seed >= RESEED_RETRY:
                        last_seed = now
                        was_seeded, seeded = seeded, await self.rebuild.ensure()
                        if seeded and not was_seeded:  # loaded from a Redis not yet whole
                            await self._load_snapshot()
                if now - last_arrival > TRUST_WINDOW:
                    raise TimeoutError("no heartbeat came back on the revocation subscription")
                message = await self._next(pubsub)
                if message is None:
                    continue
                kind = message["type"]
                if kind in ("sunsubscribe", "unsubscribe"):  # a slot moved, a failover
                    raise ConnectionError(f"Redis ended the subscription to {message['channel']}")
                if kind != "smessage":
                    continue
                channel, data = _text(message["channel"]), _text(message["data"])
                if channel == beats:
                    last_arrival = time.monotonic()
                    # Only a copy loaded from a Redis that holds the whole state is trusted:
                    # until the rebuild succeeds, an empty copy would accept revoked tokens.
                    if seeded:
                        self.mirror.trust_until(float(data) + TRUST_WINDOW)
                    continue
                await self._handle(channel, data)
        finally:
            # (the copy is distrusted by `_run`, after it said why, or by `stop`)
            self._client = None
            with contextlib.suppress(Exception):
                await pubsub.aclose()
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _next(self, pubsub: Any) -> dict[str, Any] | None:
        if hasattr(pubsub, "get_sharded_message"):
            message: dict[str, Any] | None = await pubsub.get_sharded_message(
                ignore_subscribe_messages=False, timeout=HEARTBEAT / 2
            )
        else:
            message = await pubsub.get_message(
                ignore_subscribe_messages=False, timeout=HEARTBEAT / 2
            )
        if message is not None and _text(message["type"]) == "ssubscribe":
            return None
        if message is not None:
            message["type"] = _text(message["type"])
        return message

    async def _beat(self, client: RedisClient, beats: str, sent: float) -> None:
        """Register as live, then send a beat: both on the feed's slot, in this order."""
        async with client.pipeline(transaction=False) as pipe:
            pipe.eval(REGISTER, 1, self.channels.workers, self.worker, FORGET_WORKERS_AFTER)
            pipe.spublish(beats, repr(sent))
            await pipe.execute()

    async def _load_snapshot(self) -> None:
        for snapshot in await self.store.snapshots():
            for bucket, fingerprints in snapshot.sessions.items():
                self.mirror.add_sessions(bucket, fingerprints)
            for bucket, versions in snapshot.versions.items():
                self.mirror.add_versions(bucket, versions)
            self.mirror.set_not_before(snapshot.not_before)

    async def _handle(self, channel: str, data: str) -> None:
        if channel != self.channels.events:  # an ack for one of ours
            revocation_id, worker = messages.decode_ack(data)
            waiter = self._pending.get(revocation_id)
            if waiter is not None:
                waiter.add(worker)
            return
        revocation = messages.decode(data)
        for sid in revocation.sessions:
            self.mirror.revoke_session(sid)
        for user_id, version in revocation.users:
            self.mirror.set_lowest_version(user_id, version)
        if revocation.not_before is not None:
            self.mirror.set_not_before(revocation.not_before)
        if revocation.asker and self._client is not None:
            await self._client.spublish(
                self.channels.ack(revocation.asker),
                messages.encode_ack(revocation.id, self.worker),
            )


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Acks:
    """The acknowledgements of one revocation: the workers that applied it."""

    def __init__(self) -> None:
        self.workers: set[str] = set()
        self.expected: set[str] | None = None
        self.done = asyncio.Event()

    @property
    def received(self) -> int:
        return len(self.workers)

    def add(self, worker: str) -> None:
        self.workers.add(worker)
        self.check()

    def check(self) -> None:
        if self.expected is not None and self.expected <= self.workers:
            self.done.set()

    async def wait(self, expected: set[str], seconds: float) -> bool:
        self.expected = expected
        self.check()
        try:
            async with asyncio.timeout(max(seconds, 0.0)):
                await self.done.wait()
        except TimeoutError:
            return False
        return True
