"""app/keys.py: key material, its encryption at rest, JWKs, and the lifecycle's decisions."""

from __future__ import annotations

import dataclasses

import jwt
import pytest

from app import keys
from app.config import Settings
from app.keys import KeySet, KeyState, Lifecycle, SigningKey, Step, StoredKey
from tests.support import SECRET

ALGORITHMS = ("HS256", "HS384", "HS512", "ES256", "EdDSA", "RS256")
LIFE = Lifecycle(algorithm="ES256", rotation_interval=1000, publish_lead=100, retire_horizon=50)


def key(
    alg: str = "ES256",
    state: KeyState = KeyState.CURRENT,
    *,
    created: float = 0.0,
    activated: float | None = None,
    retired: float | None = None,
) -> SigningKey:
    new = keys.generate(SECRET, alg)
    stored = StoredKey(new.kid, alg, state, created, activated, retired, new.material)
    return keys.unlock(stored, SECRET)


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_every_algorithm_signs_what_pyjwt_verifies_with_the_public_half(alg: str) -> None:
    signing = key(alg)
    header = jwt.utils.base64url_encode(f'{{"alg":"{alg}"}}'.encode()).decode()
    signing_input = f"{header}.{jwt.utils.base64url_encode(b'{}').decode()}"
    signature = jwt.utils.base64url_encode(signing.sign(signing_input.encode())).decode()
    verified = jwt.api_jws.decode(f"{signing_input}.{signature}", signing.public, algorithms=[alg])
    assert verified == b"{}"


@pytest.mark.parametrize("alg", ALGORITHMS)
def test_signatures_are_deterministic(alg: str) -> None:
    # a retried refresh is answered with the same bytes, whatever the algorithm (RFC 6979)
    signing = key(alg)
    assert signing.sign(b"a.b") == signing.sign(b"a.b")


@pytest.mark.parametrize("alg", ["ES256", "EdDSA", "RS256"])
def test_jwk_is_the_public_half_only_and_pyjwt_reads_it(alg: str) -> None:
    signing = key(alg)
    jwk = signing.jwk()
    assert jwk is not None
    assert (jwk["kid"], jwk["alg"], jwk["use"]) == (signing.kid, alg, "sig")
    assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(jwk)
    token = jwt.encode({"a": 1}, signing.private, algorithm=alg)
    assert jwt.decode(token, jwt.PyJWK(jwk).key, algorithms=[alg]) == {"a": 1}


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_keys_are_never_published(alg: str) -> None:
    assert key(alg).jwk() is None
    assert keys.published(KeySet([key(alg)]), 0.0, 50) == []


def test_private_halves_are_encrypted_bound_to_kid_and_algorithm() -> None:
    new = keys.generate(SECRET, "HS256")
    plain = keys.decrypt(SECRET, new.kid, "HS256", new.material)
    assert len(plain) == keys.HMAC_KEY_BYTES and plain not in new.material
    with pytest.raises(keys.KeyDecryptionError, match="JWT_SECRET"):
        keys.decrypt("another-secret-" + "y" * 40, new.kid, "HS256", new.material)
    with pytest.raises(keys.KeyDecryptionError):  # a row's material moved to another kid
        keys.decrypt(SECRET, "other-kid", "HS256", new.material)
    with pytest.raises(keys.KeyDecryptionError):  # or relabelled as another algorithm
        keys.decrypt(SECRET, new.kid, "HS512", new.material)
    tampered = new.material[:-1] + bytes([new.material[-1] ^ 1])
    with pytest.raises(keys.KeyDecryptionError):
        keys.decrypt(SECRET, new.kid, "HS256", tampered)


def test_the_legacy_key_is_jwt_secret_for_tokens_without_kid_only() -> None:
    legacy = keys.unlock(
        StoredKey(keys.LEGACY_KID, "HS256", KeyState.RETIRED, 0.0, None, 10.0, None), SECRET
    )
    current = key("HS256", activated=10.0)
    keyset = KeySet([legacy, current])
    assert keyset.verifying(None, 20.0, 50) is legacy
    assert legacy.public == SECRET.encode()
    assert keyset.verifying("", 20.0, 50) is None  # only by having no kid at all
    assert keyset.verifying(None, 60.0, 50) is None  # gone with its horizon
    assert keyset.current is current
    assert keys.plan(KeySet([current]), 20.0, dataclasses.replace(LIFE, algorithm="HS256")) in (
        Step.REPLACE_NEXT,
    )


def test_verifying_keys_are_next_current_and_retired_within_the_horizon() -> None:
    upcoming = key(state=KeyState.NEXT, created=100.0)
    current = key(activated=100.0)
    retired = key(state=KeyState.RETIRED, activated=0.0, retired=100.0)
    keyset = KeySet([upcoming, current, retired])
    assert keyset.current is current and keyset.next is upcoming
    for signing in (upcoming, current, retired):
        assert keyset.verifying(signing.kid, 149.0, 50) is signing
    assert keyset.verifying(retired.kid, 150.0, 50) is None
    assert keyset.verifying("unknown", 149.0, 50) is None
    kids = [jwk["kid"] for jwk in keys.published(keyset, 149.0, 50)]
    assert kids == [current.kid, upcoming.kid, retired.kid]
    assert [jwk["kid"] for jwk in keys.published(keyset, 150.0, 50)] == kids[:2]


def test_plan_walks_the_lifecycle() -> None:
    assert keys.plan(KeySet([]), 0.0, LIFE) is Step.CREATE
    current = key(activated=0.0)
    assert keys.plan(KeySet([current]), 0.0, LIFE) is Step.REPLACE_NEXT
    upcoming = key(state=KeyState.NEXT, created=0.0)
    both = KeySet([current, upcoming])
    assert keys.plan(both, 999.0, LIFE) is Step.NONE
    assert keys.plan(both, 1000.0, LIFE) is Step.ROTATE
    # a next key of an algorithm no longer configured is replaced before anything else
    other = KeySet([current, key("EdDSA", KeyState.NEXT, created=0.0)])
    assert keys.plan(other, 1000.0, LIFE) is Step.REPLACE_NEXT
    retired = key(state=KeyState.RETIRED, activated=0.0, retired=100.0)
    with_retired = KeySet([current, upcoming, retired])
    assert keys.plan(with_retired, 149.0, LIFE) is Step.NONE
    assert keys.plan(with_retired, 150.0, LIFE) is Step.REMOVE
    assert keys.expired(with_retired, 150.0, 50) == [retired.kid]


def test_a_key_signs_only_after_one_jwks_lifetime_of_being_published() -> None:
    current = key(activated=0.0)
    young = key(state=KeyState.NEXT, created=950.0)
    keyset = KeySet([current, young])
    assert not keys.rotation_due(keyset, 1000.0, LIFE)
    assert keys.rotation_due(keyset, 1050.0, LIFE)


def test_a_change_of_algorithm_rotates_as_soon_as_the_new_next_key_may_sign() -> None:
    current = key("HS256", activated=0.0)
    upcoming = key("ES256", KeyState.NEXT, created=10.0)
    keyset = KeySet([current, upcoming])
    assert keys.plan(keyset, 109.0, LIFE) is Step.NONE
    assert keys.plan(keyset, 110.0, LIFE) is Step.ROTATE


def test_retire_horizon_covers_the_longest_token_the_skew_and_a_reload() -> None:
    settings = Settings(jwt_secret=SECRET, access_token_ttl=600, refresh_token_ttl=3600)
    horizon = keys.retire_horizon(settings)
    assert horizon >= 3600 + settings.clock_skew + keys.RELOAD_EVERY
    assert keys.lifecycle(settings).retire_horizon == horizon


def test_a_young_next_key_of_another_algorithm_is_kept_a_while() -> None:
    """Hosts of a rolling change of JWT_ALGORITHM would otherwise replace each other's next
    key every few seconds, and no rotation would ever happen."""
    current = key(activated=0.0)
    young = KeySet([current, key("EdDSA", KeyState.NEXT, created=950.0)])
    assert keys.plan(young, 1000.0, LIFE) is Step.NONE
    assert keys.plan(young, 1050.0, LIFE) is Step.REPLACE_NEXT
