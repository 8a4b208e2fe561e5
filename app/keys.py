"""Signing keys: their material, encryption at rest, JWKs, and the lifecycle's decisions. Pure.

A key is `next` (published, not signing yet), then `current` (signing), then `retired`
(published and accepted until every token it signed has expired), then removed. Which key
signs, which verifies a `kid`, what is published and what the rotation job must do next are
functions of a `KeySet` snapshot and the clock; `app.stores.keys` only reads and writes rows,
and `app.keyring` keeps each worker's snapshot fresh.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.config import Settings

HMAC_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
ASYMMETRIC_ALGORITHMS = ("ES256", "EdDSA", "RS256")
HMAC_KEY_BYTES = 64
RSA_BITS = 2048
# The key of tokens issued before keys had ids (no `kid`): JWT_SECRET itself, accepted after
# an upgrade until the tokens it signed have expired, never signing again.
LEGACY_KID = ""
# Every worker reads the keys again this often: a rotation reaches every host within it.
RELOAD_EVERY = 5.0
# A worker signs only with keys it read this lately (else 503): what bounds how long after a
# rotation a host may still sign with the retired key.
SIGN_STALE_AFTER = 3 * RELOAD_EVERY


class KeyState(enum.Enum):
    NEXT = "next"
    CURRENT = "current"
    RETIRED = "retired"


class KeyDecryptionError(Exception):
    """A stored key does not decrypt with this JWT_SECRET (another deployment's, or altered)."""


@dataclass(frozen=True, slots=True)
class KeyFacts:
    """What the lifecycle looks at, of a stored row or a usable key: times in epoch seconds."""

    kid: str
    alg: str
    state: KeyState
    created_at: float
    activated_at: float | None
    retired_at: float | None


@dataclass(frozen=True, slots=True)
class StoredKey(KeyFacts):
    """A row of `signing_keys`; `material` encrypted (None: the legacy key)."""

    material: bytes | None


@dataclass(frozen=True, slots=True)
class NewKey:
    """A freshly generated key, its private half already encrypted for storing."""

    kid: str
    alg: str
    material: bytes


# -- material and its encryption ------------------------------------------------------


def _wrapping_key(master_secret: str) -> AESGCM:
    derived = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=None, info=b"jwt-refresh-api: signing keys v1"
    ).derive(master_secret.encode())
    return AESGCM(derived)


def encrypt(master_secret: str, kid: str, alg: str, plaintext: bytes) -> bytes:
    """AES-256-GCM under a key derived from JWT_SECRET; the kid and algorithm are bound in."""
    nonce = os.urandom(12)
    aad = f"{kid}:{alg}".encode()
    return nonce + _wrapping_key(master_secret).encrypt(nonce, plaintext, aad)


def decrypt(master_secret: str, kid: str, alg: str, material: bytes) -> bytes:
    try:
        return _wrapping_key(master_secret).decrypt(
            material[:12], material[12:], f"{kid}:{alg}".encode()
        )
    except (InvalidTag, ValueError):
        raise KeyDecryptionError(
            f"signing key {kid!r} does not decrypt with this JWT_SECRET: every host of a"
            " deployment needs the same JWT_SECRET"
        ) from None


def _private_bytes(alg: str) -> bytes:
    if alg in HMAC_ALGORITHMS:
        return secrets.token_bytes(HMAC_KEY_BYTES)
    private: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    if alg == "ES256":
        private = ec.generate_private_key(ec.SECP256R1())
    elif alg == "EdDSA":
        private = ed25519.Ed25519PrivateKey.generate()
    elif alg == "RS256":
        private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_BITS)
    else:
        raise ValueError(f"unsupported algorithm {alg!r}")
    return private.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def generate(master_secret: str, alg: str) -> NewKey:
    """A new random key of `alg` with a random `kid`, encrypted for storing."""
    kid = secrets.token_urlsafe(12)
    return NewKey(kid, alg, encrypt(master_secret, kid, alg, _private_bytes(alg)))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _uint(value: int, length: int | None = None) -> str:
    size = length or max(1, (value.bit_length() + 7) // 8)
    return _b64(value.to_bytes(size, "big"))


@dataclass(frozen=True, slots=True)
class SigningKey(KeyFacts):
    """A usable key: what signs with it, what verifies with it, and its public JWK."""

    private: Any = field(repr=False)  # HMAC bytes, or a cryptography private key
    public: Any = field(repr=False)  # HMAC bytes, or a cryptography public key (PyJWT's key)

    @property
    def symmetric(self) -> bool:
        return self.alg in HMAC_ALGORITHMS

    def sign(self, signing_input: bytes) -> bytes:
        """The JWS signature of `signing_input`. Deterministic for every algorithm (ECDSA by
        RFC 6979), so that a pair issued again for a retried refresh is the same bytes."""
        if self.symmetric:
            return hmac.new(self.private, signing_input, HMAC_ALGORITHMS[self.alg]).digest()
        if self.alg == "ES256":
            der = self.private.sign(
                signing_input, ec.ECDSA(hashes.SHA256(), deterministic_signing=True)
            )
            r, s = decode_dss_signature(der)
            return r.to_bytes(32, "big") + s.to_bytes(32, "big")
        if self.alg == "EdDSA":
            signature: bytes = self.private.sign(signing_input)
            return signature
        signature = self.private.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
        return signature

    def jwk(self) -> dict[str, str] | None:
        """The public JWK (RFC 7517) with `kid`, `alg` and `use`; None for an HMAC key."""
        if self.symmetric:
            return None
        base = {"kid": self.kid, "alg": self.alg, "use": "sig"}
        if self.alg == "ES256":
            numbers = self.public.public_numbers()
            return {
                "kty": "EC",
                "crv": "P-256",
                "x": _uint(numbers.x, 32),
                "y": _uint(numbers.y, 32),
                **base,
            }
        if self.alg == "EdDSA":
            raw = self.public.public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            return {"kty": "OKP", "crv": "Ed25519", "x": _b64(raw), **base}
        numbers = self.public.public_numbers()
        return {"kty": "RSA", "n": _uint(numbers.n), "e": _uint(numbers.e), **base}


def unlock(stored: StoredKey, master_secret: str) -> SigningKey:
    """The usable key of a stored row (the legacy row's key is JWT_SECRET itself)."""
    if stored.material is None:
        private: Any = master_secret.encode()
        public: Any = private
    else:
        raw = decrypt(master_secret, stored.kid, stored.alg, stored.material)
        if stored.alg in HMAC_ALGORITHMS:
            private = public = raw
        else:
            private = serialization.load_der_private_key(raw, password=None)
            public = private.public_key()
    return SigningKey(
        stored.kid,
        stored.alg,
        stored.state,
        stored.created_at,
        stored.activated_at,
        stored.retired_at,
        private,
        public,
    )


# -- the set and its lifecycle ----------------------------------------------------------


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
        order = {KeyState.CURRENT: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}
        keys = sorted(self.keys.values(), key=lambda key: (order[key.state], -key.created_at))
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
