"""Redis marks of used refresh tokens: the cheap first step of "each refresh token works once".

A mark is keyed by the token's `jti` (never the token), holds the time its writer sent it,
and expires with the token.
"""

from __future__ import annotations

from redis.asyncio import Redis


class UsedMarks:
    def __init__(self, redis: Redis, *, prefix: str):
        self.redis = redis
        self._used = f"{prefix}used:"

    def key(self, jti: str) -> str:
        return self._used + jti

    async def mark(self, jti: str, ttl: int, at: float) -> float | None:
        """Mark refresh token `jti` used at `at`. None if this call marked it; else when the
        mark it found was made (the time its writer sent it, even if it landed later)."""
        previous = await self.redis.set(self.key(jti), repr(at), nx=True, get=True, ex=max(1, ttl))
        return None if previous is None else float(previous)

    async def unmark(self, jti: str) -> None:
        await self.redis.delete(self.key(jti))
