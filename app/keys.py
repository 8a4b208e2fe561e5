"""Signing keys: their material, its encryption at rest, signatures and public JWKs. Pure.

A key is `next` (published, not signing yet), then `current` (signing), then `retired`
(published and accepted until every token it signed has expired), then removed: that
lifecycle is `app.keyset`'s; `app.stores.keys` reads and writes the rows.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

HMAC_ALGORITHMS = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}
ASYMMETRIC_ALGORITHMS = ("ES256", "EdDSA", "RS256")
HMAC_KEY_BYTES = 64
RSA_BITS = 2048
# The key of tokens issued before keys had ids (no `kid`): JWT_SECRET itself, accepted after
# an upgrade until the tokens it signed have expired, never signing again.
LEGACY_KID = ""


class KeyState(enum.Enum):
    NEXT = "next"
    CURRENT = "current"
    RETIRED = "retired"


# The order keys are shown in (JWKS, `keys list`): the signing key first.
STATE_ORDER = {KeyState.CURRENT: 0, KeyState.NEXT: 1, KeyState.RETIRED: 2}


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
