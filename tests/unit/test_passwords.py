"""Unit tests of app/passwords.py: argon2id off the event loop, a bounded queue, the dummy."""

from __future__ import annotations

import asyncio

import pytest

from app import passwords
from app.errors import PasswordsBusy, ServiceUnavailable, as_api_error


async def test_a_hash_verifies_and_a_wrong_password_does_not() -> None:
    stored = await passwords.hash_password("correct horse")
    assert await passwords.verify_password(stored, "correct horse") == (True, False)
    assert (await passwords.verify_password(stored, "wrong horse"))[0] is False


async def test_no_hash_checks_the_dummy_and_never_matches() -> None:
    for password in ("anything", "dummy password for unknown users"):
        assert await passwords.verify_password(None, password) == (False, False)


async def test_beyond_the_queue_a_check_is_refused_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flood of hashes can't queue up: past MAX_PENDING in flight, a 503 at once."""
    monkeypatch.setattr(passwords, "MAX_PENDING", 2)
    results = await asyncio.gather(
        *(passwords.hash_password("correct horse") for _ in range(5)), return_exceptions=True
    )
    refused = [r for r in results if isinstance(r, PasswordsBusy)]
    hashed = [r for r in results if isinstance(r, str)]
    assert len(hashed) == 2 and len(refused) == 3, results
    assert isinstance(as_api_error(refused[0]), ServiceUnavailable)
    # and once they are done, there is room again
    assert isinstance(await passwords.hash_password("correct horse"), str)
