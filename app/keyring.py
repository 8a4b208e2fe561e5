"""Each worker's signing keys: loaded from PostgreSQL at start and every few seconds, the
lifecycle's due steps run (`app.key_lifecycle`), and the JWKS of what it holds.

The keys live in PostgreSQL, so every host sees the same ones; a worker reads them again
every `RELOAD_EVERY` seconds, and at once (at most once a second) when a token names a kid
it does not know, which is how a host learns of a rotation another host just made.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
import time
from collections.abc import Callable
from typing import Any

from sanic import Sanic

from app import keys, keyset
from app.config import Settings
from app.db import Database
from app.key_lifecycle import advance
from app.keys import SigningKey
from app.keyset import KeySet, Step
from app.stores import keys as key_rows
from app.tokens import STALE, KeysNotLoaded

log = logging.getLogger("app.keys")

UNKNOWN_KID_RELOAD = 1.0  # seconds between reloads for unknown kids, at most


class Keyring:
    """A worker's keys (`keyset`, what `Tokens` signs and verifies with)."""

    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.life = keyset.lifecycle(settings)
        self.keyset: KeySet[SigningKey] | None = None
        self._unlocked: dict[tuple[str, bytes | None], SigningKey] = {}
        self._last_unknown = float("-inf")
        self._reloading: asyncio.Task[None] | None = None  # the request-driven read in flight
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._loaded_at = float("-inf")
        self._on_removed: list[Callable[[], None]] = []

    async def reload(self) -> None:
        """Read the keys again; a key decrypts once, its state changes are just copied."""
        rows = await key_rows.load(self.db)
        usable: list[SigningKey] = []
        unlocked: dict[tuple[str, bytes | None], SigningKey] = {}
        for row in rows:
            known = self._unlocked.get((row.kid, row.material))
            if known is None:
                try:
                    known = keys.unlock(row, self.settings.jwt_secret)
                except keys.KeyDecryptionError as error:
                    # not this deployment's secret: the key is unusable here (a current key
                    # among them: no signing, 503), never a crash or a 500
                    log.error("signing keys: %s", error)
                    continue
            unlocked[(row.kid, row.material)] = known
            usable.append(
                dataclasses.replace(
                    known,
                    state=row.state,
                    activated_at=row.activated_at,
                    retired_at=row.retired_at,
                )
            )
        self._unlocked = unlocked
        before = self.keyset
        self.keyset = KeySet(usable)
        self._loaded_at = time.monotonic()
        if before is not None and set(before.keys) - set(self.keyset.keys):
            for forget in self._on_removed:  # a key went: nothing it signed may be cached
                forget()

    def on_removed(self, forget: Callable[[], None]) -> None:
        """Call `forget` whenever a key disappears (its horizon passed, or it was revoked)."""
        self._on_removed.append(forget)

    def can_sign(self) -> bool:
        return time.monotonic() - self._loaded_at <= keyset.SIGN_STALE_AFTER

    async def ready_to_sign(self) -> None:
        """Keys too old to sign with (PostgreSQL was away): read them now, one read for every
        request that asks at once; KeysNotLoaded when that fails too."""
        if self.can_sign():
            return
        try:
            await asyncio.shield(self._shared_reload())
        except Exception:  # noqa: BLE001 - an outage: the answer is a 503
            raise KeysNotLoaded(STALE) from None
        if not self.can_sign():
            raise KeysNotLoaded(STALE)

    async def start(self) -> None:
        """At a worker's start: the keys, creating them on a fresh database. While PostgreSQL
        does not answer the worker starts anyway (and answers 503) and keeps trying."""
        try:
            await advance(self.db, self.settings, wait=True)
        except keys.KeyDecryptionError as error:
            log.error("signing keys: %s; this worker can't sign until that is fixed", error)
        except Exception as error:  # noqa: BLE001 - an outage: the loop tries again
            log.warning("signing keys: not created (%r); trying again", error)
        try:
            await self.reload()
        except Exception as error:  # noqa: BLE001 - an outage: the loop tries again
            log.warning("signing keys: not loaded (%r); trying again", error)
        self._task = asyncio.get_running_loop().create_task(self._maintain())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _maintain(self) -> None:
        while True:
            # after a failure (PostgreSQL down or frozen), try every second: a worker signs
            # only with keys read in the last SIGN_STALE_AFTER seconds
            pause = 1.0 if self.keyset is None or self._failing else keyset.RELOAD_EVERY
            await asyncio.sleep(pause * random.uniform(0.8, 1.0))  # noqa: S311 - spreading
            try:
                await self.reload()
                assert self.keyset is not None
                if keyset.plan(self.keyset, time.time(), self.life) is not Step.NONE:
                    if await advance(self.db, self.settings, wait=False):
                        await self.reload()
                self._failing = False
            except Exception as error:  # noqa: BLE001 - keep the keys we have; try again
                if not self._failing:
                    log.warning("signing keys: reload failed (%r); keeping the last ones", error)
                self._failing = True

    async def reload_for_unknown(self) -> bool:
        """Reload because a token named an unknown kid: at most once a second, one reload
        for every request that asks at once. True when the keys were read again."""
        if self._reloading is None:
            if time.monotonic() - self._last_unknown < UNKNOWN_KID_RELOAD:
                return False
            self._last_unknown = time.monotonic()
        await asyncio.shield(self._shared_reload())
        return True

    def _shared_reload(self) -> asyncio.Task[None]:
        """One read of the keys for every request that needs one now."""
        if self._reloading is None:
            self._reloading = asyncio.ensure_future(self.reload())
            self._reloading.add_done_callback(self._reloaded)
        return self._reloading

    def _reloaded(self, task: asyncio.Task[None]) -> None:
        if self._reloading is task:
            self._reloading = None
        if not task.cancelled():
            task.exception()  # retrieved: a failure is its waiters' to report

    def jwks(self) -> dict[str, Any]:
        snapshot = self.keyset
        if snapshot is None:
            raise KeysNotLoaded()
        return {"keys": keyset.published(snapshot, time.time(), self.life.retire_horizon)}


async def _open(app: Sanic[Any, Any]) -> None:
    keyring = Keyring(app.ctx.settings, app.ctx.db)
    app.ctx.keyring = keyring
    app.ctx.tokens.keys = keyring
    await keyring.start()


async def _close(app: Sanic[Any, Any]) -> None:
    await app.ctx.keyring.stop()


def setup_keys(app: Sanic[Any, Any]) -> None:
    """Per worker, after the database: `app.ctx.keyring`, the keys `app.ctx.tokens` uses."""
    app.before_server_start(_open)
    app.after_server_stop(_close)
