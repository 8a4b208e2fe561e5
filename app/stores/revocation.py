"""Redis state for tokens: used refresh-token marks and revoked sessions.

Every key is named by a `jti`, `sid` or user id, never by a token, and carries a TTL no
longer than the tokens it speaks of can live, so the state never grows without bound.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis


class RevocationStore:
    def __init__(self, redis: Redis, *, prefix: str, access_ttl: int):
        self.redis = redis
        self._used = f"{prefix}used:"
        self._session = f"{prefix}revoked:sid:"
        # A revoked session's access tokens die within one access-token lifetime.
        self._revoked_ttl = access_ttl + 60

    async def mark_used(self, jti: str, ttl: int) -> float | None:
        """Mark refresh token `jti` used. None if this call marked it; else when it was marked."""
        previous = await self.redis.set(
            self._used + jti, repr(time.time()), nx=True, get=True, ex=max(1, ttl)
        )
        return None if previous is None else float(previous)

    async def unmark_used(self, jti: str) -> None:
        await self.redis.delete(self._used + jti)

    async def revoke_sessions(self, sids: list[str]) -> None:
        if not sids:
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.set(self._session + sid, "1", ex=self._revoked_ttl)
            await pipe.execute()

    async def is_revoked(self, sid: str) -> bool:
        return bool(await self.redis.exists(self._session + sid))
