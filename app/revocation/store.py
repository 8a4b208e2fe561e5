"""Redis state of revoked access tokens: revoked sessions, per-user "not before", the marker.

Every key is named by a `sid` or user id, never by a token, and carries a TTL no longer than
the tokens it speaks of can live, so the state never grows without bound. The one exception
is the marker that says Redis still holds this state (see `is_seeded`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from redis.asyncio import Redis

from app.revocation import messages
from app.tokens import AccessClaims


def revoked_ttl(access_ttl: int, clock_skew: int) -> int:
    """How long a revocation matters: every access token issued before it is dead by then,
    even one from a host whose clock ran `clock_skew` ahead."""
    return access_ttl + clock_skew


class RevocationStore:
    def __init__(self, redis: Redis, *, prefix: str, access_ttl: int, clock_skew: int):
        self.redis = redis
        self._session = f"{prefix}revoked:sid:"
        self._not_before = f"{prefix}notbefore:user:"
        self._seeded = f"{prefix}revocations:seeded"
        self.events, self.acks = messages.channels(prefix)
        self.revoked_ttl = revoked_ttl(access_ttl, clock_skew)

    def session_key(self, sid: str) -> str:
        return self._session + sid

    def user_key(self, user_id: str) -> str:
        return self._not_before + user_id

    async def publish(self, revocation: messages.Revocation) -> int:
        """Store a revocation and publish it in one round trip; how many subscribers got it."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in revocation.sessions:
                pipe.set(self.session_key(sid), "1", ex=self.revoked_ttl)
            for user_id, not_before in revocation.users:
                pipe.set(self.user_key(user_id), str(not_before), ex=self.revoked_ttl)
            pipe.publish(self.events, messages.encode(revocation))
            receivers: int = (await pipe.execute())[-1]
        return receivers

    async def acknowledge(self, revocation_id: str) -> None:
        await self.redis.publish(self.acks, messages.encode_ack(revocation_id))

    async def is_session_revoked(self, sid: str) -> bool:
        return bool(await self.redis.exists(self.session_key(sid)))

    async def is_revoked(self, claims: AccessClaims) -> bool | None:
        """One round trip: is the token's session revoked, or was it issued at or before its
        user's "not before" (a password change, log out everywhere, a disabled account, a scope
        removed)? None when Redis has lost its revocation state (see `is_seeded`): rebuild it,
        then ask again."""
        session, not_before, seeded = await self.redis.mget(
            self.session_key(claims.sid), self.user_key(claims.sub), self._seeded
        )
        if session is not None or (not_before is not None and claims.iat <= int(not_before)):
            return True
        return False if seeded is not None else None

    # -- the whole state: loading a worker's copy, rebuilding after a loss ---------------

    async def revoked_sessions(self) -> AsyncIterator[str]:
        async for key in self.redis.scan_iter(match=self.session_key("*"), count=1000):
            yield key.rsplit(":", 1)[1]

    async def users_not_before(self) -> AsyncIterator[tuple[str, int]]:
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
        self, sessions: list[tuple[str, int]], users: list[tuple[str, int, int]]
    ) -> None:
        """Write back revocations recorded in PostgreSQL, each with its remaining TTL."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid, remaining in sessions:
                pipe.set(self.session_key(sid), "1", ex=remaining)
            for user_id, not_before, remaining in users:
                pipe.set(self.user_key(user_id), str(not_before), ex=remaining)
            pipe.set(self._seeded, "1")
            await pipe.execute()
