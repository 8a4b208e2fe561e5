"""argon2id password hashing, always run in a thread pool so the event loop never stalls."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP Password Storage Cheat Sheet: argon2id, m=19 MiB, t=2, p=1.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
# argon2 releases the GIL; more threads than cores would only queue inside the kernel.
_executor = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="argon2")


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
    return await asyncio.get_running_loop().run_in_executor(_executor, _hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> tuple[bool, bool]:
    """(matches, needs_rehash). With no hash, a dummy is checked so the time is the same."""
    return await asyncio.get_running_loop().run_in_executor(
        _executor, _verify, password_hash, password
    )


async def warm_up() -> None:
    """Compute the dummy hash before the first unknown-user login, so it costs no more."""
    await asyncio.get_running_loop().run_in_executor(_executor, _dummy_hash)
