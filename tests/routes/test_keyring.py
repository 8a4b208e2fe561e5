"""A worker's keyring against the real PostgreSQL: keys too old to sign with are read again
by the request that needs them, not only by the next periodic reload."""

from __future__ import annotations

import pytest

from app.config import Settings
from app.db import Database
from app.keyring import Keyring
from app.tokens import KeysNotLoaded
from tests.support import DATABASE_URL


async def test_stale_keys_are_read_again_for_the_request_that_signs(settings: Settings) -> None:
    """After PostgreSQL was away long enough for the keys to go stale, the first request
    once it is back signs (the CI failure: a refresh right after recovery answered 503)."""
    db = await Database.open(DATABASE_URL, max_size=2)
    keyring = Keyring(settings, db)
    try:
        await keyring.start()
        assert keyring.can_sign()
        keyring._loaded_at = float("-inf")  # as after minutes without PostgreSQL
        assert not keyring.can_sign()
        await keyring.ready_to_sign()
        assert keyring.can_sign()
    finally:
        await keyring.stop()
        await db.close()


async def test_stale_keys_and_postgresql_still_away_are_a_503(settings: Settings) -> None:
    db = await Database.open(DATABASE_URL, max_size=2)
    keyring = Keyring(settings, db)
    try:
        await keyring.start()
        keyring._loaded_at = float("-inf")
        await db.close()  # every read fails now
        with pytest.raises(KeysNotLoaded) as refused:
            await keyring.ready_to_sign()
        assert refused.value.status == 503
        assert not keyring.can_sign()
    finally:
        await keyring.stop()
