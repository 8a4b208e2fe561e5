"""Redis counters of failed logins, per account and per client address, in fixed windows."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis

from app.policy import username_key


@dataclass(frozen=True, slots=True)
class Limits:
    per_account: int = 10
    per_address: int = 50  # addresses are shared (NAT, offices): allow more
    window: int = 15 * 60


class LoginLimiter:
    def __init__(self, redis: Redis, *, prefix: str, limits: Limits | None = None):
        self.redis = redis
        self.limits = limits or Limits()
        self._account = f"{prefix}loginfail:account:"
        self._address = f"{prefix}loginfail:ip:"

    def _keys(self, username: str, address: str | None) -> list[str]:
        keys = [self._account + username_key(username)]
        if address:
            keys.append(self._address + address)
        return keys

    async def retry_after(self, username: str, address: str | None) -> tuple[int, bool]:
        """(seconds until a login may be tried again, 0 when now; whether the account has
        failures on record, so that a success needs to clear them)."""
        keys = self._keys(username, address)
        limits = [self.limits.per_account, self.limits.per_address]
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.get(key)
                pipe.ttl(key)
            replies = await pipe.execute()
        wait = 0
        for index, limit in enumerate(limits[: len(keys)]):
            count, ttl = replies[2 * index], replies[2 * index + 1]
            if count is not None and int(count) >= limit:
                wait = max(wait, ttl if ttl > 0 else self.limits.window)
        return wait, replies[0] is not None

    async def failed(self, username: str, address: str | None) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in self._keys(username, address):
                pipe.incr(key)
                pipe.expire(key, self.limits.window, nx=True)  # the window never slides
            await pipe.execute()

    async def succeeded(self, username: str) -> None:
        await self.redis.delete(self._account + username_key(username))
