"""The lifecycle's steps on the deployment's keys: create, replace the next key, rotate,
remove (`advance`, by one worker of all hosts), and the operator's `keys rotate` and
`keys revoke`. Each runs under a transaction-scoped advisory lock, plans again from the rows
under it (on PostgreSQL's clock), and writes by compare-and-set."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from app import keys, keyset
from app.config import Settings
from app.db import Database
from app.keys import KeyState, NewKey, StoredKey
from app.keyset import KeySet, Step
from app.stores import keys as key_rows

log = logging.getLogger("app.keys")


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
    life = keyset.lifecycle(settings)
    rows = await key_rows.load(db)
    if keyset.plan(KeySet(rows), time.time(), life) is Step.NONE:
        return []
    _check_secret(rows, settings)
    done: list[Step] = []
    async with db.transaction() as conn:
        if not await key_rows.lock(conn, wait=wait):
            return done
        for _ in range(len(Step)):
            now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
            facts: KeySet[StoredKey] = KeySet(await key_rows.load(conn))
            step = keyset.plan(facts, now, life)
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
                expired = keyset.expired(facts, now, life.retire_horizon)
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
    life = keyset.lifecycle(settings)
    upcoming = await _fresh(settings)
    async with db.transaction() as conn:
        await key_rows.lock(conn, wait=True)
        now = float(await conn.fetchval("SELECT extract(epoch FROM now())"))
        rows = await key_rows.load(conn)
        _check_secret(rows, settings)
        facts: KeySet[StoredKey] = KeySet(rows)
        current, waiting = facts.current, facts.next
        assert current is not None and waiting is not None
        if not force and not keyset.published_long_enough(waiting, now, life):
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
