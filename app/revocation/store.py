"""Redis state of revoked access tokens: revoked sessions, each user's lowest valid token
version, the global cut-off of revoke-all, and, per shard, the marker that says the shard
holds its whole state.

The state is split into SHARDS shards, each under one hash tag (`<prefix>{rv<n>}:`), so that in
a Redis Cluster a shard lives in one slot and every step on it is one slot's: a session's mark
lives in the shard of its sid, a user's lowest version in the shard of the user id, and every
shard holds its own copy of the global cut-off and its own marker. A node that loses its data
(a restart without persistence, a flush) loses the markers of exactly its shards: each shard's
loss is noticed, and rebuilt, by itself.

Every key is named by a `sid` or user id, never by a token, and carries a TTL no longer than
the tokens it speaks of can live; only the markers have none. Next to the point keys that
`is_revoked` reads, each shard keeps an index of what it holds, by BUCKET of expiry: a string
of hex fingerprints (app/revocation/mirror.py), appended to and expiring with its bucket, so
that a worker loads its copy with a few GETs per shard, in proportion to the revocations and
never by scanning the keyspace.
"""

from __future__ import annotations

import array
import asyncio
import sys
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from redis.asyncio.cluster import RedisCluster

from app.errors import ServiceUnavailable
from app.redis import RedisClient
from app.revocation.mirror import BUCKET, bucket_of, fingerprint
from app.tokens import AccessClaims

SHARDS = 16  # fixed: the shard of an id must be the same in every release and every worker
CHUNK = 500  # entries per script call

# Write entries into one shard, all or nothing. KEYS[1] is the shard's marker, then two keys
# per entry: the point key and its bucket's index. ARGV[1] '1' sets the marker at the end (a
# rebuild's last chunk); then five per entry: kind ('s' a session mark, 'p' a session mark
# not yet published, 'v' a value that only rises), value, TTL in seconds, the index record
# ('' for none), the index's expiry (epoch).
_WRITE = """
for i = 1, (#KEYS - 1) / 2 do
    local key, index = KEYS[2 * i], KEYS[2 * i + 1]
    local at = 5 * i - 3
    local kind, value, ttl, record = ARGV[at], ARGV[at + 1], ARGV[at + 2], ARGV[at + 3]
    if kind == 's' then
        redis.call('SET', key, PUBLISHED, 'EX', ttl)
    elseif kind == 'p' then
        if redis.call('GET', key) ~= PUBLISHED then
            redis.call('SET', key, PENDING, 'EX', ttl)
        end
    else
        local current = redis.call('GET', key)
        if not current or tonumber(current) < tonumber(value) then
            redis.call('SET', key, value, 'EX', ttl)
        end
    end
    if record ~= '' then
        redis.call('APPEND', index, record)
        redis.call('EXPIREAT', index, ARGV[at + 4])
    end
end
if ARGV[1] == '1' then
    redis.call('SET', KEYS[1], '1')
end
return 1
""".replace("PUBLISHED", "'1'").replace("PENDING", "'0'")

# A session's mark says whether its revocation was published: "0" written before the
# publish, "1" after it (or by a rebuild, which needs none). Either refuses the session's
# tokens; a retry publishes again what is not "1" (`unmarked`).
PENDING, PUBLISHED = "0", "1"


def revoked_ttl(access_ttl: int, clock_skew: int) -> int:
    """How long a revocation matters: every access token issued before it is dead by then,
    even one from a host whose clock ran `clock_skew` ahead."""
    return access_ttl + clock_skew


def shard_of(ident: str) -> int:
    return zlib.crc32(ident.encode()) % SHARDS


@dataclass(frozen=True, slots=True)
class Entry:
    """One thing to write: a revoked session, a user's lowest version, or the cut-off."""

    kind: str  # "s", "p" (a session not yet published), "u" or "g"
    ident: str  # sid, user id; "" for the cut-off
    value: int  # 1, the version, the cut-off's epoch
    ttl: int


@dataclass(slots=True)
class Snapshot:
    """What one shard's index holds, for a worker's copy."""

    whole: bool
    not_before: int
    sessions: dict[int, array.array[int]]  # bucket -> fingerprints
    versions: dict[int, list[tuple[int, int]]]  # bucket -> (user fingerprint, version)


class ReplicationError(ServiceUnavailable):
    """Redis did not confirm a revocation's write on enough replicas: a failover could lose
    it (the caller answers 503; a retry writes it again)."""


class RevocationStore:
    def __init__(
        self,
        redis: RedisClient,
        *,
        prefix: str,
        access_ttl: int,
        clock_skew: int,
        wait_replicas: int = 0,
    ):
        self.redis = redis
        self.prefix = prefix
        self.revoked_ttl = revoked_ttl(access_ttl, clock_skew)
        self.clock_skew = clock_skew
        self.wait_replicas = wait_replicas
        self.cluster = isinstance(redis, RedisCluster)

    # -- key names ------------------------------------------------------------------------

    def shard(self, n: int) -> str:
        return f"{self.prefix}{{rv{n}}}:"

    def session_key(self, sid: str) -> str:
        return f"{self.shard(shard_of(sid))}s:{sid}"

    def user_key(self, user_id: str) -> str:
        return f"{self.shard(shard_of(user_id))}u:{user_id}"

    def not_before_key(self, n: int) -> str:
        return f"{self.shard(n)}not-before"

    def marker_key(self, n: int) -> str:
        return f"{self.shard(n)}whole"

    def index_key(self, n: int, kind: str, bucket: int) -> str:
        return f"{self.shard(n)}ix{kind}:{bucket}"

    # -- writing --------------------------------------------------------------------------

    def entries(
        self,
        sessions: Iterable[str] = (),
        users: Iterable[tuple[str, int]] = (),
        not_before: int | None = None,
    ) -> list[Entry]:
        """The entries of one revocation about to be published, each for a revocation's
        lifetime."""
        found = [Entry("p", sid, 1, self.revoked_ttl) for sid in sessions]
        found += [Entry("u", user, version, self.revoked_ttl) for user, version in users]
        if not_before is not None:
            found.append(Entry("g", "", not_before, self.cut_off_ttl(not_before)))
        return found

    def cut_off_ttl(self, epoch: int) -> int:
        """The global cut-off is kept while a token issued before it may live."""
        return max(1, epoch - int(time.time()) + self.revoked_ttl)

    async def write(
        self,
        entries: list[Entry],
        *,
        whole: Iterable[int] = (),
        only: set[int] | None = None,
        replicate: bool = True,
    ) -> None:
        """Write entries, each shard's in one script (atomic in its slot), only into the
        shards `only` when given; the shards in `whole` get their marker after their entries
        (a rebuild). With wait_replicas (and `replicate`), wait until that many replicas have
        every write, or raise ReplicationError. A rebuild need not wait: a failover that
        loses it loses its markers too, and the shards are rebuilt again."""
        by_shard: dict[int, list[Entry]] = {n: [] for n in whole}
        for entry in entries:
            shards = range(SHARDS) if entry.kind == "g" else (shard_of(entry.ident),)
            for n in shards:
                if only is None or n in only:
                    by_shard.setdefault(n, []).append(entry)
        if not by_shard:
            return
        now = time.time()
        marked = set(whole)
        async with self.redis.pipeline(transaction=False) as pipe:
            for n, shard_entries in by_shard.items():
                chunks = [shard_entries[i : i + CHUNK] for i in range(0, len(shard_entries), CHUNK)]
                for i, chunk in enumerate(chunks or [[]]):
                    last = i == max(len(chunks), 1) - 1
                    self._queue(pipe, n, chunk, now, mark=last and n in marked)
            wait = replicate and self.wait_replicas and not self.cluster
            if wait:
                pipe.execute_command("WAIT", self.wait_replicas, 1000)
            replies = await pipe.execute()
        if wait and int(replies[-1]) < self.wait_replicas:
            raise ReplicationError(
                f"{replies[-1]} of {self.wait_replicas} Redis replicas confirmed the revocation"
            )

    def _queue(self, pipe: Any, n: int, entries: list[Entry], now: float, *, mark: bool) -> None:
        keys = [self.marker_key(n)]
        args: list[str | int] = ["1" if mark else "0"]
        for entry in entries:
            forget_at = now + entry.ttl
            bucket = bucket_of(forget_at)
            if entry.kind in ("s", "p"):
                keys += [self.session_key(entry.ident), self.index_key(n, "s", bucket)]
                record = f"{fingerprint(entry.ident):016x}"
            elif entry.kind == "u":
                keys += [self.user_key(entry.ident), self.index_key(n, "u", bucket)]
                record = f"{fingerprint(entry.ident):016x}{entry.value:016x}"
            else:
                keys += [self.not_before_key(n), self.not_before_key(n)]
                record = ""
            kind = entry.kind if entry.kind in ("s", "p") else "v"
            args += [kind, entry.value, max(1, entry.ttl), record, bucket * BUCKET + 1]
        pipe.eval(_WRITE, len(keys), *keys, *args)

    # -- reading --------------------------------------------------------------------------

    async def is_revoked(self, claims: AccessClaims) -> bool | None:
        """Is the token's session revoked, its version below its user's lowest valid one (a
        password change, log out everywhere, a disabled account, a scope removed), or was it
        issued before the global cut-off? One round trip, one read per shard involved (a
        cluster serves them in parallel). None when a shard involved lost its state (see
        `whole`): rebuild it, then ask again."""
        session_shard, user_shard = shard_of(claims.sid), shard_of(claims.sub)
        user_keys = [self.user_key(claims.sub), self.not_before_key(user_shard)]
        if session_shard == user_shard:
            session, version, cut_off, whole = await self.redis.mget(
                self.session_key(claims.sid), *user_keys, self.marker_key(user_shard)
            )
            whole_too = whole
        elif self.cluster:  # two slots, perhaps two nodes: both reads at once
            (session, whole), (version, cut_off, whole_too) = await asyncio.gather(
                self.redis.mget(self.session_key(claims.sid), self.marker_key(session_shard)),
                self.redis.mget(*user_keys, self.marker_key(user_shard)),
            )
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.mget(self.session_key(claims.sid), self.marker_key(session_shard))
                pipe.mget(*user_keys, self.marker_key(user_shard))
                (session, whole), (version, cut_off, whole_too) = await pipe.execute()
        if session is not None or (version is not None and claims.ver < int(version)):
            return True
        if cut_off is not None and claims.iat < int(cut_off):
            return True
        return False if whole is not None and whole_too is not None else None

    async def published(self, sids: Iterable[str]) -> None:
        """The revocation of `sids` was published: their marks say so (one key each)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.set(self.session_key(sid), PUBLISHED, xx=True, keepttl=True)
            await pipe.execute()

    async def unmarked(self, sids: list[str]) -> list[str]:
        """The sessions among `sids` whose revocation Redis does not hold, or holds without
        knowing it was published."""
        if not sids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.get(self.session_key(sid))
            marks = await pipe.execute()
        return [sid for sid, mark in zip(sids, marks, strict=True) if mark != PUBLISHED]

    async def not_before(self) -> int:
        """The global cut-off (0: none), as the first shard holds it."""
        value = await self.redis.get(self.not_before_key(0))
        return int(value) if value is not None else 0

    async def missing(self) -> list[int]:
        """The shards that lost (or never had) their state."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for n in range(SHARDS):
                pipe.exists(self.marker_key(n))
            present = await pipe.execute()
        return [n for n, there in enumerate(present) if not there]

    async def snapshots(self) -> list[Snapshot]:
        """Every shard's index: what a worker's copy is loaded from (a few GETs per shard,
        whatever else Redis holds)."""
        now = time.time()  # the writers' clocks may be CLOCK_SKEW off ours, either way
        skew = self.clock_skew
        buckets = range(bucket_of(now - skew), bucket_of(now + self.revoked_ttl + skew) + 1)
        async with self.redis.pipeline(transaction=False) as pipe:
            for n in range(SHARDS):
                pipe.exists(self.marker_key(n))
                pipe.get(self.not_before_key(n))
                for bucket in buckets:
                    pipe.get(self.index_key(n, "s", bucket))
                    pipe.get(self.index_key(n, "u", bucket))
            replies = iter(await pipe.execute())
        found = []
        for _ in range(SHARDS):
            whole, cut_off = next(replies), next(replies)
            snapshot = Snapshot(bool(whole), int(cut_off or 0), {}, {})
            for bucket in buckets:
                sessions, versions = next(replies), next(replies)
                if sessions:
                    snapshot.sessions[bucket] = _fingerprints(sessions)
                if versions:
                    snapshot.versions[bucket] = _versions(versions)
            found.append(snapshot)
        return found

    async def lock_rebuild(self, n: int, seconds: int = 30) -> bool:
        """One rebuilder per shard across every worker of every host."""
        return bool(await self.redis.set(f"{self.shard(n)}rebuilding", "1", nx=True, ex=seconds))

    async def unlock_rebuild(self, n: int) -> None:
        await self.redis.delete(f"{self.shard(n)}rebuilding")


def _numbers(blob: str, width: int) -> array.array[int]:
    """The 64-bit numbers of a hex index (records of `width` hex digits; a torn tail, which
    a write never leaves, is ignored): decoded in C, not one by one."""
    raw = bytes.fromhex(blob[: len(blob) - len(blob) % width])
    numbers = array.array("Q", raw)
    if sys.byteorder == "little":
        numbers.byteswap()
    return numbers


def _fingerprints(blob: str) -> array.array[int]:
    return _numbers(blob, 16)


def _versions(blob: str) -> list[tuple[int, int]]:
    numbers = _numbers(blob, 32)
    return list(zip(numbers[0::2], numbers[1::2], strict=True))
