"""argon2id password hashing, always run in a thread pool so the event loop never stalls."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from app.errors import PasswordsBusy

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# argon2 releases the GIL; more threads than cores would only queue inside the kernel.
_executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")
# Hashes waiting or running in this worker, at most: beyond, a request is answered 503 at once
# instead of queueing behind a flood (each hash is ~20 MiB and tens of milliseconds).
MAX_PENDING = 32
_pending = 0


async def _run(function: Any, *args: Any) -> Any:
    global _pending
    if _pending >= MAX_PENDING:
        raise PasswordsBusy("Too many password checks in progress; try again shortly.")
    _pending += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_executor, function, *args)
    finally:
        _pending -= 1


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher.hash("dummy password for unknown users")


def _verify(password_hash: str | None, password: str) -> tuple[bool, bool]:
    try:
        ok = _hasher.verify(password_hash or _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return False, False
    if password_hash is None:  # the dummy's own password matches it: still no account
        return False, False
    return ok, _hasher.check_needs_rehash(password_hash)


async def hash_password(password: str) -> str:
    hashed: str = await _run(_hasher.hash, password)
    return hashed


async def verify_password(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). With no hash, a dummy is checked so the time is the same."""
    result: tuple[bool, bool] = await _run(_verify, password_hash, password)
    return result


async def warm_up() -> None:
    """Compute the dummy hash before the first unknown-user login, so it costs no more."""
    await asyncio.get_running_loop().run_in_executor(_executor, _dummy_hash)
