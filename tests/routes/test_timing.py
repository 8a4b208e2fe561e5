"""An unknown user, a wrong password and a disabled account are refused alike, in about the
same time, so the answer time does not tell which usernames exist or are disabled.

Only ratios of medians are compared, never absolute times: other test runs share the CPU.
"""

from __future__ import annotations

import json
import statistics
import time
from typing import Any

from redis.asyncio import Redis

from app.stores import users
from tests.support import REDIS_PREFIX, Api

PASSWORD = "correct horse"
WRONG = "wrong password"
ROUNDS = 9


async def reset_login_counts(redis: Redis) -> None:
    """Forget failed-login counts (app/stores/ratelimit.py), so the limiter never kicks in."""
    keys = [key async for key in redis.scan_iter(match=REDIS_PREFIX + "loginfail:*")]
    if keys:
        await redis.delete(*keys)


async def timed_login(api: Api, username: str, password: str) -> tuple[Any, float]:
    started = time.perf_counter()
    response = await api.request(
        "POST", "/auth/login", json={"username": username, "password": password}
    )
    return response, time.perf_counter() - started


async def test_unknown_wrong_and_disabled_take_about_the_same_time(api: Api, redis: Redis) -> None:
    await api.register("alice", PASSWORD)
    await api.register("dora", PASSWORD)
    dora = await users.by_username(api.app.ctx.db, "dora")
    assert dora is not None
    await users.set_disabled(api.app.ctx.db, str(dora["id"]), True)

    cases = {
        "wrong_password": lambda i: ("alice", WRONG),
        "unknown_user": lambda i: (f"nobody{i}", PASSWORD),
        "disabled": lambda i: ("dora", PASSWORD),
    }
    # warm-up: the first request of each kind pays for caches and connections
    for make in cases.values():
        await timed_login(api, *make(-1))
    await reset_login_counts(redis)

    times: dict[str, list[float]] = {name: [] for name in cases}
    bodies: dict[str, set[str]] = {name: set() for name in cases}
    for index in range(ROUNDS):
        # interleaved, so a burst of load elsewhere hits every kind alike
        for name, make in cases.items():
            response, seconds = await timed_login(api, *make(index))
            assert response.status == 401, (name, response.text)
            bodies[name].add(response.text)
            times[name].append(seconds)
        await reset_login_counts(redis)

    # the same answer for all three
    answers = {text for texts in bodies.values() for text in texts}
    assert len(answers) == 1, answers
    assert json.loads(answers.pop())["error"] == "invalid_grant"

    medians = {name: statistics.median(values) for name, values in times.items()}
    reference = medians["wrong_password"]
    for name in ("unknown_user", "disabled"):
        ratio = medians[name] / reference
        assert 0.5 <= ratio <= 2.0, (name, ratio, medians)
