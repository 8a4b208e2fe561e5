"""Redis counters of the login limiter and the registration limiter (policy: app/limits.py).

Each counter is one key, incremented with its fixed window set only by its first increment
(`EXPIRE NX`) in one script on that key alone, so concurrent attempts each see their own count
and no counter is ever left without its window. Every step touches one key, so the counters of
one attempt may live on different nodes of a Redis Cluster (the pipelines are split per node).
"""

from __future__ import annotations

from dataclasses import dataclass

from app.limits import Count, Limits, address_group, first_refusal, login_wait, registration_wait
from app.policy import username_key
from app.redis import RedisClient

# One fixed-window counter: its value and the seconds left in its window.
_COUNT = """
local value = redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], ARGV[1], 'NX')
return {value, redis.call('TTL', KEYS[1])}
"""

# A member added to a set that lives `ARGV[2]` seconds from its last addition.
_REMEMBER = """
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

# Take an attempt back on success: never below zero, never a key without its window (a key
# that expired meanwhile stays gone: a success can't hand out a budget of its own).
_TAKE_BACK = """
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
if value > 0 then
    redis.call('DECR', KEYS[1])
end
return 1
"""


@dataclass(frozen=True, slots=True)
class Attempt:
    wait: int  # seconds to wait before trying again; 0: it may go ahead
    first_refusal: bool  # the first attempt a counter refuses in its window


class LoginLimiter:
    def __init__(self, redis: RedisClient, *, prefix: str, limits: Limits | None = None):
        self.redis = redis
        self.limits = limits or Limits()
        self._prefix = prefix

    def _keys(self, username: str, address: str | None) -> dict[str, str]:
        account, group = username_key(username), address_group(address)
        p = self._prefix
        return {
            "pair": f"{p}login:pair:{account}|{group}",
            "address": f"{p}login:address:{group}",
            "account": f"{p}login:account:{account}",
            "known": f"{p}login:known:{account}",
            "successes": f"{p}login:ok:{account}",
            "group": group,
        }

    async def attempt(self, username: str, address: str | None, *, authenticated: bool) -> Attempt:
        """Count a login attempt (or, `authenticated`, a password change's check of the
        current password): whether it may go ahead."""
        keys = self._keys(username, address)
        window = self.limits.window
        counted = ["pair", "account"] if authenticated else ["pair", "address", "account"]
        async with self.redis.pipeline(transaction=False) as pipe:
            for name in counted:
                pipe.eval(_COUNT, 1, keys[name], window)  # the window never slides
            pipe.sismember(keys["known"], keys["group"])
            pipe.get(keys["successes"])
            pipe.ttl(keys["successes"])
            replies = await pipe.execute()
        counts = {
            name: Count(int(replies[i][0]), int(replies[i][1])) for i, name in enumerate(counted)
        }
        successes = Count(int(replies[-2] or 0), replies[-1])
        wait = login_wait(
            self.limits,
            pair=counts["pair"],
            address=counts.get("address"),
            account=counts["account"],
            known_address=bool(replies[-3]),
            successes=None if authenticated else successes,
        )
        first = bool(wait) and first_refusal(
            self.limits,
            pair=counts["pair"],
            address=counts.get("address"),
            account=counts["account"],
        )
        return Attempt(wait, first)

    async def succeeded(self, username: str, address: str | None, *, authenticated: bool) -> None:
        """The right password: this address's count for the account starts afresh, the other
        counts take this attempt back, the success is counted, and the address is one the
        account is known from."""
        keys = self._keys(username, address)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.delete(keys["pair"])
            for name in ("account",) if authenticated else ("address", "account"):
                pipe.eval(_TAKE_BACK, 1, keys[name])
            if not authenticated:
                pipe.eval(_COUNT, 1, keys["successes"], self.limits.success_window)
                pipe.eval(_REMEMBER, 1, keys["known"], keys["group"], self.limits.known_for)
            await pipe.execute()


class RegistrationLimiter:
    def __init__(self, redis: RedisClient, *, prefix: str, limits: Limits | None = None):
        self.redis = redis
        self.limits = limits or Limits()
        self._prefix = f"{prefix}register:address:"

    async def attempt(self, address: str | None) -> int:
        """Count a registration; seconds to wait before trying again, 0 when it may go ahead."""
        key = self._prefix + address_group(address)
        value, ttl = await self.redis.eval(_COUNT, 1, key, self.limits.registration_window)
        return registration_wait(self.limits, Count(int(value), int(ttl)))
