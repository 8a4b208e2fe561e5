"""Redis state of revoked access tokens: revoked sessions, each user's lowest valid token
version, and the marker that says Redis holds the whole state.

Every key is named by a `sid` or user id, never by a token, and carries a TTL no longer than
the tokens it speaks of can live, so the state never grows without bound. The one exception
is the marker (see `is_seeded`).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from app.revocation import messages
from app.tokens import AccessClaims

# A user's lowest valid version only ever rises, whatever order two cut-offs arrive in: one
# key, read and written in one script.
_RAISE = """
local current = redis.call('GET', KEYS[1])
if not current or tonumber(current) < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 1
"""


def revoked_ttl(access_ttl: int, clock_skew: int) -> int:
    """How long a revocation matters: every access token issued before it is dead by then,
    even one from a host whose clock ran `clock_skew` ahead."""
    return access_ttl + clock_skew


class RevocationStore:
    def __init__(self, redis: Redis, *, prefix: str, access_ttl: int, clock_skew: int):
        self.redis = redis
        self._session = f"{prefix}revoked:sid:"
        self._version = f"{prefix}version:user:"
        # Named anew with the token versions: a Redis of an older release is rebuilt once.
        self._seeded = f"{prefix}revocations:whole"
        self._not_before = f"{prefix}revocations:not-before"
        self.events, self.acks = messages.channels(prefix)
        self.revoked_ttl = revoked_ttl(access_ttl, clock_skew)
        self._raise = redis.register_script(_RAISE)

    def session_key(self, sid: str) -> str:
        return self._session + sid

    def user_key(self, user_id: str) -> str:
        return self._version + user_id

    async def publish(self, revocation: messages.Revocation) -> int:
        """Store a revocation and publish it, all or nothing (MULTI): a stored mark means the
        workers were told. How many subscribers got it."""
        async with self.redis.pipeline(transaction=True) as pipe:
            for sid in revocation.sessions:
                pipe.set(self.session_key(sid), "1", ex=self.revoked_ttl)
            for user_id, version in revocation.users:
                await self._raise(
                    keys=[self.user_key(user_id)], args=[version, self.revoked_ttl], client=pipe
                )
            if revocation.not_before is not None:
                await self._raise_not_before(pipe, revocation.not_before)
            pipe.publish(self.events, messages.encode(revocation))
            receivers: int = (await pipe.execute())[-1]
        return receivers

    async def _raise_not_before(self, pipe: Any, epoch: int) -> None:
        """The global cut-off only rises; kept while a token issued before it may live."""
        ttl = max(1, epoch - int(time.time()) + self.revoked_ttl)
        await self._raise(keys=[self._not_before], args=[epoch, ttl], client=pipe)

    async def not_before(self) -> int:
        """The global cut-off (0: none)."""
        value = await self.redis.get(self._not_before)
        return int(value) if value is not None else 0

    async def acknowledge(self, revocation_id: str) -> None:
        await self.redis.publish(self.acks, messages.encode_ack(revocation_id))

    async def unmarked(self, sids: list[str]) -> list[str]:
        """The sessions among `sids` whose revocation Redis does not hold."""
        if not sids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.exists(self.session_key(sid))
            marked = await pipe.execute()
        return [sid for sid, present in zip(sids, marked, strict=True) if not present]

    async def is_revoked(self, claims: AccessClaims) -> bool | None:
        """One round trip: is the token's session revoked, or its version below its user's
        lowest valid one (a password change, log out everywhere, a disabled account, a scope
        removed)? None when Redis has lost its revocation state (see `is_seeded`): rebuild
        it, then ask again."""
        session, version, cut_off, seeded = await self.redis.mget(
            self.session_key(claims.sid), self.user_key(claims.sub), self._not_before, self._seeded
        )
        if session is not None or (version is not None and claims.ver < int(version)):
            return True
        if cut_off is not None and claims.iat < int(cut_off):
            return True
        return False if seeded is not None else None

    # -- the whole state: loading a worker's copy, rebuilding after a loss ---------------

    async def revoked_sessions(self) -> AsyncIterator[str]:
        async for key in self.redis.scan_iter(match=self.session_key("*"), count=1000):
            yield key.rsplit(":", 1)[1]

    async def lowest_versions(self) -> AsyncIterator[tuple[str, int]]:
        keys = [k async for k in self.redis.scan_iter(match=self.user_key("*"), count=1000)]
        for start in range(0, len(keys), 1000):
            chunk = keys[start : start + 1000]
            for key, value in zip(chunk, await self.redis.mget(chunk), strict=True):
                if value is not None:
                    yield key.rsplit(":", 1)[1], int(value)

    async def is_seeded(self) -> bool:
        """False when Redis has lost (or never had) the revocation state: a restart without
        persistence, a flush. The marker key has no TTL, so it goes exactly when data does."""
        return bool(await self.redis.exists(self._seeded))

    async def restore(
        self,
        sessions: list[tuple[str, int]],
        users: list[tuple[str, int, int]],
        not_before: int | None = None,
    ) -> None:
        """Write back revocations recorded in PostgreSQL, each with its remaining TTL."""
        async with self.redis.pipeline(transaction=False) as pipe:
            if not_before is not None:
                await self._raise_not_before(pipe, not_before)
            for sid, remaining in sessions:
                pipe.set(self.session_key(sid), "1", ex=remaining)
            for user_id, version, remaining in users:
                await self._raise(
                    keys=[self.user_key(user_id)], args=[version, remaining], client=pipe
                )
            pipe.set(self._seeded, "1")
            await pipe.execute()
