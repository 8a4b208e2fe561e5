"""Each worker's signing keys: loaded from PostgreSQL at start and every few seconds, and the
lifecycle's steps (create, next key, rotation, removal) run by one worker of all hosts.

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
from dataclasses import dataclass
from typing import Any

from sanic import Sanic

from app import keys
from app.config import Settings
from app.db import Database
from app.keys import KeySet, KeyState, NewKey, SigningKey, Step, StoredKey
from app.stores import keys as key_rows
from app.tokens import KeysNotLoaded

log = logging.getLogger("app.keys")

UNKNOWN_KID_RELOAD = 1.0  # seconds between reloads for unknown kids, at most


class NotPublishedLongEnough(Exception):
    """`keys rotate` without --force while the next key is younger than the JWKS max-age."""

    def __init__(self, wait: float):
        self.wait = wait
        super().__init__(f"the next key was published {wait:.0f} s too recently")


@dataclass(frozen=True, slots=True)
class Rotated:
    retired: str
    current: str
    next: str


def _legacy_alg(settings: Settings) -> str:
    return settings.jwt_algorithm if settings.jwt_algorithm in keys.HMAC_ALGORITHMS else "HS256"


async def _fresh(settings: Settings) -> NewKey:
    """A new key, generated off the event loop (an RSA key takes a while)."""
    return await asyncio.to_thread(keys.generate, settings.jwt_secret, settings.jwt_algorithm)


async def advance(db: Database, settings: Settings, *, wait: bool) -> list[Step]:
    """Run the lifecycle's due steps, under the advisory lock (skipped when another worker
    holds it and `wait` is false); each step is planned again from the rows under the lock."""
    life = keys.lifecycle(settings)
    rows = await key_rows.load(db)
    if keys.plan(KeySet(rows), time.time(), life) is Step.NONE:
        return []
    _check_secret(rows, settings)
    done: list[Step] = []
    async with db.transaction() as conn:
        if not await key_rows.lock(conn, wait=wait):
            return done
        for _ in range(len(Step)):
            now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
            facts: KeySet[StoredKey] = KeySet(await key_rows.load(conn))
            step = keys.plan(facts, now, life)
            if step is Step.NONE:
                break
            if step is Step.CREATE:
                if facts.next is not None:
                    await key_rows.drop_next(conn, facts.next.kid)
                legacy = None
                if not facts.keys and await key_rows.has_live_sessions(conn):
                    legacy = _legacy_alg(settings)
                await key_rows.create(conn, await _fresh(settings), await _fresh(settings), legacy)
            elif step is Step.REPLACE_NEXT:
                if facts.next is not None:
                    await key_rows.drop_next(conn, facts.next.kid)
                await key_rows.add_next(conn, await _fresh(settings))
            elif step is Step.ROTATE:
                assert facts.current is not None and facts.next is not None
                await key_rows.rotate(
                    conn, facts.current.kid, facts.next.kid, await _fresh(settings)
                )
            else:
                expired = keys.expired(facts, now, life.retire_horizon)
                await key_rows.remove(conn, expired, life.retire_horizon)
            done.append(step)
    for step in done:
        log.info("signing keys: %s", step.value)
    return done


def _check_secret(rows: list[StoredKey], settings: Settings) -> None:
    """Before writing any key: this JWT_SECRET decrypts the deployment's keys (a host with
    another secret must not add keys the others can't read)."""
    for row in rows:
        keys.unlock(row, settings.jwt_secret)


async def rotate_now(db: Database, settings: Settings, *, force: bool) -> Rotated:
    """The operator's rotation: the next key signs at once, a new next key is published.
    Without `force`, refused while the next key is younger than the JWKS max-age (a verifier
    that cached the JWKS before it appeared might not know it yet)."""
    await advance(db, settings, wait=True)  # a fresh database, a next key of the right kind
    life = keys.lifecycle(settings)
    upcoming = await _fresh(settings)
    async with db.transaction() as conn:
        await key_rows.lock(conn, wait=True)
        now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
        rows = await key_rows.load(conn)
        _check_secret(rows, settings)
        facts: KeySet[StoredKey] = KeySet(rows)
        current, waiting = facts.current, facts.next
        assert current is not None and waiting is not None
        if not force and not keys.published_long_enough(waiting, now, life):
            raise NotPublishedLongEnough(waiting.created_at + life.publish_lead - now)
        await key_rows.rotate(conn, current.kid, waiting.kid, upcoming)
    log.info("signing keys: rotated by the operator, %s now signs", waiting.kid)
    return Rotated(current.kid, waiting.kid, upcoming.kid)


class KeyIsCurrent(Exception):
    """`keys revoke` of the key that signs: rotate first."""


async def revoke_key(db: Database, settings: Settings, kid: str) -> KeyState | None:
    """Delete key `kid` at once (a compromised key): every token it signed is refused on
    every host within RELOAD_EVERY seconds. The signing key can't go (rotate first); None
    when there is no such key."""
    async with db.transaction() as conn:
        await key_rows.lock(conn, wait=True)
        facts: KeySet[StoredKey] = KeySet(await key_rows.load(conn))
        key = facts.keys.get(kid)
        if key is None or kid == keys.LEGACY_KID:
            return None
        if key.state is KeyState.CURRENT:
            raise KeyIsCurrent(kid)
        await key_rows.delete(conn, kid)
    log.warning("signing keys: %s (%s) revoked by the operator", kid, key.state.value)
    return key.state


class Keyring:
    """A worker's keys (`keyset`, what `Tokens` signs and verifies with)."""

    def __init__(self, settings: Settings, db: Database):
        self.settings = settings
        self.db = db
        self.life = keys.lifecycle(settings)
        self.keyset: KeySet[SigningKey] | None = None
        self._unlocked: dict[tuple[str, bytes | None], SigningKey] = {}
        self._last_unknown = float("-inf")
        self._reloading: asyncio.Task[bool] | None = None
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
        return time.monotonic() - self._loaded_at <= keys.SIGN_STALE_AFTER

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
            pause = keys.RELOAD_EVERY if self.keyset is not None else 1.0
            await asyncio.sleep(pause * random.uniform(0.8, 1.0))  # noqa: S311 - spreading
            try:
                await self.reload()
                assert self.keyset is not None
                if keys.plan(self.keyset, time.time(), self.life) is not Step.NONE:
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
            self._reloading = asyncio.ensure_future(self._reload_ok())
            self._reloading.add_done_callback(self._reloaded)
        return await asyncio.shield(self._reloading)

    def _reloaded(self, task: asyncio.Task[bool]) -> None:
        if self._reloading is task:
            self._reloading = None
        if not task.cancelled():
            task.exception()  # retrieved: a failure is its waiters' to report

    async def _reload_ok(self) -> bool:
        await self.reload()
        return True

    def jwks(self) -> dict[str, Any]:
        keyset = self.keyset
        if keyset is None:
            raise KeysNotLoaded()
        return {"keys": keys.published(keyset, time.time(), self.life.retire_horizon)}


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
