"""Every command Redis executes while a test watches, through MONITOR."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

from redis.asyncio import Redis

from tests.support import REDIS_PREFIX, REDIS_URL


async def wait_for_marker(commands: list[str], marker: str, within: float) -> None:
    deadline = time.monotonic() + within
    while not any(marker in command for command in commands):
        if time.monotonic() > deadline:
            raise AssertionError(f"MONITOR marker not seen within {within} s")
        await asyncio.sleep(0.005)


class RedisCommands:
    """Every command Redis executes while open, through MONITOR on a connection of its own.

    Precise where server-wide counters are not: other processes may share this Redis, but
    only this run uses REDIS_PREFIX, and the keys tell whose command it was.
    """

    def __init__(self) -> None:
        self.commands: list[str] = []

    async def __aenter__(self) -> RedisCommands:
        self._client = Redis.from_url(REDIS_URL, decode_responses=True)
        self._monitor = self._client.monitor()
        await self._monitor.__aenter__()
        self._task = asyncio.create_task(self._collect())
        await self.sync()
        return self

    async def _collect(self) -> None:
        async for info in self._monitor.listen():
            self.commands.append(info["command"])

    async def sync(self) -> None:
        """Return once every command sent before this call is in `commands`."""
        marker = f"{REDIS_PREFIX}monitor-marker:{uuid.uuid4().hex}"
        async with Redis.from_url(REDIS_URL) as other:
            await other.exists(marker)
        await wait_for_marker(self.commands, marker, 5)

    def count(self, command: str, key: str) -> int:
        """How many `command`s (MGET, PUBLISH, ...) naming `key` Redis executed."""
        return sum(
            1 for c in self.commands if c.split(" ", 1)[0].upper() == command and key in c.split()
        )

    def mgets_of(self, key: str) -> int:
        return self.count("MGET", key)

    async def __aexit__(self, *exc: object) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._task
        with contextlib.suppress(Exception):
            await self._monitor.__aexit__(None, None, None)
        await self._client.aclose()
