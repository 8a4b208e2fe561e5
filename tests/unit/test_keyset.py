"""app/keyset.py: which key verifies and is published, and the lifecycle's decisions."""

from __future__ import annotations

import dataclasses

from app import keys, keyset
from app.config import Settings
from app.keys import KeyState, StoredKey
from app.keyset import KeySet, Lifecycle, Step
from tests.support import SECRET
from tests.support.tokens import make_key as key

LIFE = Lifecycle(algorithm="ES256", rotation_interval=1000, publish_lead=100, retire_horizon=50)


def test_the_legacy_key_is_jwt_secret_for_tokens_without_kid_only() -> None:
    legacy = keys.unlock(
        StoredKey(keys.LEGACY_KID, "HS256", KeyState.RETIRED, 0.0, None, 10.0, None), SECRET
    )
    current = key("HS256", activated=10.0)
    snapshot = KeySet([legacy, current])
    assert snapshot.verifying(None, 20.0, 50) is legacy
    assert legacy.public == SECRET.encode()
    assert snapshot.verifying("", 20.0, 50) is None  # only by having no kid at all
    assert snapshot.verifying(None, 60.0, 50) is None  # gone with its horizon
    assert snapshot.current is current
    assert keyset.plan(KeySet([current]), 20.0, dataclasses.replace(LIFE, algorithm="HS256")) in (
        Step.REPLACE_NEXT,
    )


def test_verifying_keys_are_next_current_and_retired_within_the_horizon() -> None:
    upcoming = key(state=KeyState.NEXT, created=100.0)
    current = key(activated=100.0)
    retired = key(state=KeyState.RETIRED, activated=0.0, retired=100.0)
    snapshot = KeySet([upcoming, current, retired])
    assert snapshot.current is current and snapshot.next is upcoming
    for signing in (upcoming, current, retired):
        assert snapshot.verifying(signing.kid, 149.0, 50) is signing
    assert snapshot.verifying(retired.kid, 150.0, 50) is None
    assert snapshot.verifying("unknown", 149.0, 50) is None
    kids = [jwk["kid"] for jwk in keyset.published(snapshot, 149.0, 50)]
    assert kids == [current.kid, upcoming.kid, retired.kid]
    assert [jwk["kid"] for jwk in keyset.published(snapshot, 150.0, 50)] == kids[:2]


def test_plan_walks_the_lifecycle() -> None:
    assert keyset.plan(KeySet([]), 0.0, LIFE) is Step.CREATE
    current = key(activated=0.0)
    assert keyset.plan(KeySet([current]), 0.0, LIFE) is Step.REPLACE_NEXT
    upcoming = key(state=KeyState.NEXT, created=0.0)
    both = KeySet([current, upcoming])
    assert keyset.plan(both, 999.0, LIFE) is Step.NONE
    assert keyset.plan(both, 1000.0, LIFE) is Step.ROTATE
    # a next key of an algorithm no longer configured is replaced before anything else
    other = KeySet([current, key("EdDSA", KeyState.NEXT, created=0.0)])
    assert keyset.plan(other, 1000.0, LIFE) is Step.REPLACE_NEXT
    retired = key(state=KeyState.RETIRED, activated=0.0, retired=100.0)
    with_retired = KeySet([current, upcoming, retired])
    assert keyset.plan(with_retired, 149.0, LIFE) is Step.NONE
    assert keyset.plan(with_retired, 150.0, LIFE) is Step.REMOVE
    assert keyset.expired(with_retired, 150.0, 50) == [retired.kid]


def test_a_key_signs_only_after_one_jwks_lifetime_of_being_published() -> None:
    current = key(activated=0.0)
    young = key(state=KeyState.NEXT, created=950.0)
    snapshot = KeySet([current, young])
    assert not keyset.rotation_due(snapshot, 1000.0, LIFE)
    assert keyset.rotation_due(snapshot, 1050.0, LIFE)


def test_a_change_of_algorithm_rotates_as_soon_as_the_new_next_key_may_sign() -> None:
    current = key("HS256", activated=0.0)
    upcoming = key("ES256", KeyState.NEXT, created=10.0)
    snapshot = KeySet([current, upcoming])
    assert keyset.plan(snapshot, 109.0, LIFE) is Step.NONE
    assert keyset.plan(snapshot, 110.0, LIFE) is Step.ROTATE


def test_retire_horizon_covers_the_longest_token_the_skew_and_a_reload() -> None:
    settings = Settings(jwt_secret=SECRET, access_token_ttl=600, refresh_token_ttl=3600)
    horizon = keyset.retire_horizon(settings)
    assert horizon >= 3600 + settings.clock_skew + keyset.RELOAD_EVERY
    assert keyset.lifecycle(settings).retire_horizon == horizon


def test_a_young_next_key_of_another_algorithm_is_kept_a_while() -> None:
    """Hosts of a rolling change of JWT_ALGORITHM would otherwise replace each other's next
    key every few seconds, and no rotation would ever happen."""
    current = key(activated=0.0)
    young = KeySet([current, key("EdDSA", KeyState.NEXT, created=950.0)])
    assert keyset.plan(young, 1000.0, LIFE) is Step.NONE
    assert keyset.plan(young, 1050.0, LIFE) is Step.REPLACE_NEXT
