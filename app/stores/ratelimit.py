"""Redis counters of the login limiter and the registration limiter (policy: app/limits.py).

Each counter is one key, incremented with its fixed window set only by its first increment
(`EXPIRE NX`) in one MULTI, so concurrent attempts each see their own count.
"""

from __future__ import annotations

from redis.asyncio import Redis

from app.limits import Count, Limits, address_group, login_wait, registration_wait
from app.policy import username_key


class LoginLimiter:
    def __init__(self, redis: Redis, *, prefix: str, limits: Limits | None = None):
        self.redis = redis
        self.limits = limits or Limits()
        self._prefix = prefix

    def _keys(self, username: str, address: str | None) -> tuple[str, str, str, str, str]:
        account, group = username_key(username), address_group(address)
        p = self._prefix
        return (
            f"{p}login:pair:{account}|{group}",
            f"{p}login:address:{group}",
            f"{p}login:account:{account}",
            f"{p}login:known:{account}",
            group,
        )

    async def attempt(self, username: str, address: str | None, *, authenticated: bool) -> int:
        """Count a login attempt (or, `authenticated`, a password change's check of the
        current password); seconds to wait before trying again, 0 when it may go ahead."""
        pair, by_address, by_account, known, group = self._keys(username, address)
        window = self.limits.window
        counted = [pair] if authenticated else [pair, by_address, by_account]
        async with self.redis.pipeline(transaction=True) as pipe:
            for key in counted:
                pipe.incr(key)
                pipe.expire(key, window, nx=True)  # the window never slides
                pipe.ttl(key)
            pipe.sismember(known, group)
            replies = await pipe.execute()
        counts = [Count(replies[3 * i], replies[3 * i + 2]) for i in range(len(counted))]
        return login_wait(
            self.limits,
            pair=counts[0],
            address=None if authenticated else counts[1],
            account=None if authenticated else counts[2],
            known_address=bool(replies[-1]),
        )

    async def succeeded(self, username: str, address: str | None, *, authenticated: bool) -> None:
        """The right password: this address's count for the account starts afresh, the other
        counts take this attempt back, and the address is one the account is known from."""
        pair, by_address, by_account, known, group = self._keys(username, address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(pair)
            if not authenticated:
                for key in (by_address, by_account):
                    pipe.decr(key)
                    pipe.expire(key, self.limits.window, nx=True)  # never a key without TTL
                pipe.sadd(known, group)
                pipe.expire(known, self.limits.known_for)
            await pipe.execute()


class RegistrationLimiter:
    def __init__(self, redis: Redis, *, prefix: str, limits: Limits | None = None):
        self.redis = redis
        self.limits = limits or Limits()
        self._prefix = f"{prefix}register:address:"

    async def attempt(self, address: str | None) -> int:
        """Count a registration; seconds to wait before trying again, 0 when it may go ahead."""
        key = self._prefix + address_group(address)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, self.limits.registration_window, nx=True)
            pipe.ttl(key)
            value, _, ttl = await pipe.execute()
        return registration_wait(self.limits, Count(value, ttl))
