"""A deployment's keys at one moment (`KeySet`) and the lifecycle's decisions. Pure.

Which key signs, which verifies a `kid`, what is published and what the rotation job must do
next are functions of a snapshot and the clock; `app.key_lifecycle` carries the steps out
under a lock, and `app.keyring` keeps each worker's snapshot fresh.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from app.config import Settings
from app.keys import LEGACY_KID, STATE_ORDER, KeyFacts, KeyState, SigningKey

# Every worker reads the keys again this often: a rotation reaches every host within it.
RELOAD_EVERY = 5.0
# A worker signs only with keys it read this lately (else 503): what bounds how long after a
# rotation a host may still sign with the retired key.
SIGN_STALE_AFTER = 3 * RELOAD_EVERY

K = TypeVar("K", bound=KeyFacts)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The settings the lifecycle depends on, in seconds."""

    algorithm: str
    rotation_interval: int  # a current key signs this long before the next one takes over
    publish_lead: int  # a key is published this long before it may sign (the JWKS max-age)
    retire_horizon: int  # a retired key is accepted this long after it stopped signing


def retire_horizon(settings: Settings) -> int:
    """Seconds a retired key is accepted: the longest token lifetime, the clock skew any host
    may have, and the time a host may still sign with it before it sees the rotation."""
    longest = max(settings.access_token_ttl, settings.refresh_token_ttl)
    return longest + settings.clock_skew + int(SIGN_STALE_AFTER) + 1


def lifecycle(settings: Settings) -> Lifecycle:
    return Lifecycle(
        algorithm=settings.jwt_algorithm,
        rotation_interval=settings.key_rotation_interval,
        publish_lead=settings.jwks_max_age,
        retire_horizon=retire_horizon(settings),
    )


class KeySet(Generic[K]):
    """One worker's view of the deployment's keys at one moment: immutable."""

    def __init__(self, keys: Iterable[K]):
        self.keys = {key.kid: key for key in keys}
        current = [key for key in self.keys.values() if key.state is KeyState.CURRENT]
        self.current = max(current, key=lambda key: key.activated_at or 0.0) if current else None
        upcoming = [key for key in self.keys.values() if key.state is KeyState.NEXT]
        self.next = max(upcoming, key=lambda key: key.created_at) if upcoming else None

    def __len__(self) -> int:
        return len(self.keys)

    def verifying(self, kid: str | None, now: float, horizon: int) -> K | None:
        """The key that may have signed a token with header `kid` (None: no `kid`, the legacy
        key), unless a retired key's horizon has passed."""
        key = self.keys.get(LEGACY_KID if kid is None else kid)
        if key is None or (kid is not None and key.kid == LEGACY_KID):
            return None
        if key.state is KeyState.RETIRED and (key.retired_at or 0.0) + horizon <= now:
            return None
        return key

    def usable(self, now: float, horizon: int) -> list[K]:
        """Every key that verifies now, the `next` one included: current, next, retired."""
        keys = sorted(self.keys.values(), key=lambda key: (STATE_ORDER[key.state], -key.created_at))
        return [key for key in keys if self.verifying(key.kid or None, now, horizon) is key]


def published(keys: KeySet[SigningKey], now: float, horizon: int) -> list[dict[str, str]]:
    """The JWKS's keys: the public half of every asymmetric key that verifies now."""
    return [jwk for key in keys.usable(now, horizon) if (jwk := key.jwk()) is not None]


class Step(enum.Enum):
    """What the rotation job must do to a deployment's keys, in this order of urgency."""

    CREATE = "create"  # no key signs: a fresh database (a current and a next key at once)
    REPLACE_NEXT = "replace_next"  # no next key, or one of another algorithm than configured
    # (published for the lead time already)
    ROTATE = "rotate"  # the next key takes over from the current one
    REMOVE = "remove"  # retired keys past their horizon go
    NONE = "none"


def plan(keys: KeySet[Any], now: float, life: Lifecycle) -> Step:
    """The next step of the lifecycle (pure: the job re-plans under its lock before acting)."""
    if keys.current is None:
        return Step.CREATE
    if keys.next is None:
        return Step.REPLACE_NEXT
    if keys.next.alg != life.algorithm and published_long_enough(keys.next, now, life):
        # after a while only: hosts of a rolling change of JWT_ALGORITHM don't take turns
        return Step.REPLACE_NEXT
    if rotation_due(keys, now, life):
        return Step.ROTATE
    if expired(keys, now, life.retire_horizon):
        return Step.REMOVE
    return Step.NONE


def rotation_due(keys: KeySet[Any], now: float, life: Lifecycle) -> bool:
    """The current key has signed for a whole interval (or is of another algorithm than
    configured), and the next one has been published long enough for every cache."""
    current, upcoming = keys.current, keys.next
    if current is None or upcoming is None or upcoming.alg != life.algorithm:
        return False
    if not published_long_enough(upcoming, now, life):
        return False
    return current.alg != life.algorithm or (
        (current.activated_at or 0.0) + life.rotation_interval <= now
    )


def published_long_enough(key: KeyFacts, now: float, life: Lifecycle) -> bool:
    return key.created_at + life.publish_lead <= now


def expired(keys: KeySet[Any], now: float, horizon: int) -> list[str]:
    """The kids of retired keys that no unexpired token can carry any more."""
    return [
        key.kid
        for key in keys.keys.values()
        if key.state is KeyState.RETIRED and (key.retired_at or 0.0) + horizon <= now
    ]
