"""Redis marks of used refresh tokens: the cheap first step of "each refresh token works once".

A mark is keyed by the token's `jti` (never the token) and holds the time its writer sent it.
It is only a shortcut: without it, a second use of the token still finds in PostgreSQL that the
token was rotated (the compare-and-set on the session row misses) and gets the same verdict. So
a mark lives only while requests for one token can still race or be retried: the reuse grace
plus a minute (`lifetime`), never the refresh token's 7 days: 2M refreshes a week leave tens of
thousands of marks in Redis, not millions.
"""

from __future__ import annotations

from app.redis import RedisClient

RACE_WINDOW = 60  # seconds a mark outlives the reuse grace


def lifetime(remaining: int, reuse_grace: int) -> int:
    """How long the mark of a token with `remaining` seconds to live is kept."""
    return max(1, min(remaining, reuse_grace + RACE_WINDOW))


class UsedMarks:
    def __init__(self, redis: RedisClient, *, prefix: str):
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
