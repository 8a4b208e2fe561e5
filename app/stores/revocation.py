"""Redis state for tokens: used refresh-token marks, revoked sessions, per-user "not before".

Every key is named by a `jti`, `sid` or user id, never by a token, and carries a TTL no
longer than the tokens it speaks of can live, so the state never grows without bound.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis

from app.tokens import AccessClaims

# Clock skew between the servers that issue and check tokens, added to every revocation TTL.
SKEW = 60


class RevocationStore:
    def __init__(self, redis: Redis, *, prefix: str, access_ttl: int):
        self.redis = redis
        self.prefix = prefix
        self._used = f"{prefix}used:"
        self._session = f"{prefix}revoked:sid:"
        self._not_before = f"{prefix}notbefore:user:"
        # Every access token issued before a revocation is dead one access lifetime later.
        self._revoked_ttl = access_ttl + SKEW

    # -- refresh tokens -----------------------------------------------------------

    async def mark_used(self, jti: str, ttl: int) -> float | None:
        """Mark refresh token `jti` used. None if this call marked it; else when it was marked."""
        previous = await self.redis.set(
            self._used + jti, repr(time.time()), nx=True, get=True, ex=max(1, ttl)
        )
        return None if previous is None else float(previous)

    async def unmark_used(self, jti: str) -> None:
        await self.redis.delete(self._used + jti)

    # -- access tokens ------------------------------------------------------------

    async def revoke(
        self, sids: list[str], *, user_id: str | None = None, not_before: int | None = None
    ) -> None:
        """Refuse the access tokens of `sids`, and of `user_id` issued before `not_before`."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for sid in sids:
                pipe.set(self._session + sid, "1", ex=self._revoked_ttl)
            if user_id is not None and not_before is not None:
                pipe.set(self._not_before + user_id, str(not_before), ex=self._revoked_ttl)
            await pipe.execute()

    async def is_revoked(self, claims: AccessClaims) -> bool:
        """One round trip: is the token's session revoked, or was it issued before its user's
        "not before" (a password change, log out everywhere, a disabled account)?"""
        session, not_before = await self.redis.mget(
            self._session + claims.sid, self._not_before + claims.sub
        )
        return session is not None or (not_before is not None and claims.iat < int(not_before))
