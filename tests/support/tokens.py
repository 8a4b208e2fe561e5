"""Tokens signed by hand, for the unit tests of app/tokens.py and the bearer check: valid
claims to vary one at a time, keys of every algorithm, and verified claims without a token."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from functools import cache
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from app import keys
from app.config import Settings
from app.keys import KeyState, SigningKey, StoredKey
from app.keyset import KeySet
from app.tokens import ACCESS_TYP, AccessClaims, FixedKeys, TokenError, Tokens
from tests.support import SECRET

TOKEN_SETTINGS = Settings(jwt_secret=SECRET)
ISSUER = TOKEN_SETTINGS.jwt_issuer
AUDIENCE = TOKEN_SETTINGS.jwt_audience
ACCESS_TTL = TOKEN_SETTINGS.access_token_ttl
REFRESH_TTL = TOKEN_SETTINGS.refresh_token_ttl
SID = "0f0e8d52-4c1a-4d8e-9a55-3f1b2c3d4e5f"
DROP = object()  # claim value meaning "leave this claim out"


def now() -> int:
    return int(time.time())


def access_claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a valid access token; `name=DROP` removes a claim."""
    iat = now()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "42",
        "iat": iat,
        "exp": iat + ACCESS_TTL,
        "jti": str(uuid.uuid4()),
        "sid": SID,
        "scope": "notes:read notes:write",
        "username": "alice",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


def refresh_claims(**overrides: Any) -> dict[str, Any]:
    """The claims of a valid refresh token; `name=DROP` removes a claim."""
    iat = now()
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "42",
        "iat": iat,
        "exp": iat + REFRESH_TTL,
        "jti": str(uuid.uuid4()),
        "sid": SID,
        "grant_type": "refresh",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not DROP}


@cache
def key_of(alg: str, name: str = "test") -> SigningKey:
    """A current key of `alg` (kid `name-alg`), the same one all session."""
    kid = f"{name}-{alg}"
    material = keys.encrypt(SECRET, kid, alg, keys._private_bytes(alg))
    return keys.unlock(StoredKey(kid, alg, KeyState.CURRENT, 0.0, 0.0, None, material), SECRET)


def make_key(
    alg: str = "ES256",
    state: KeyState = KeyState.CURRENT,
    *,
    created: float = 0.0,
    activated: float | None = None,
    retired: float | None = None,
) -> SigningKey:
    """A freshly generated key of `alg` in `state`, as a worker holds it."""
    new = keys.generate(SECRET, alg)
    stored = StoredKey(new.kid, alg, state, created, activated, retired, new.material)
    return keys.unlock(stored, SECRET)


# The key `sign` signs with and `make_tokens` trusts; the unit tests' `tokens` fixture sets it
# for each algorithm in turn.
ACTIVE: list[SigningKey] = []


def active_key() -> SigningKey:
    return ACTIVE[-1] if ACTIVE else key_of("HS256")


def make_tokens(settings: Settings = TOKEN_SETTINGS, *trusted: SigningKey) -> Tokens:
    """Tokens signing with the first of `trusted` (the active key by default)."""
    return Tokens(settings, FixedKeys(KeySet(trusted or [active_key()])))


def public_pem(key: SigningKey) -> bytes:
    pem: bytes = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return pem


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def sign(
    claims: Any,
    typ: str | None = ACCESS_TYP,
    *,
    key: str | bytes | None = None,
    algorithm: str | None = None,
    headers: dict[str, Any] | None = None,
    signer: SigningKey | None = None,
) -> str:
    """Sign any JSON payload (object or not) with an explicit JOSE header: by `signer` (the
    active key) with its kid, or, given `key` or an HMAC `algorithm`, an HMAC of that key
    (the active key's bytes, or its public PEM: algorithm confusion) under the same kid.
    `headers` adds to the header; a header set to DROP is left out."""
    signer = signer or active_key()
    alg = algorithm or ("HS256" if key is not None else signer.alg)
    header: dict[str, Any] = {"alg": alg, "typ": typ, "kid": signer.kid}
    header.update(headers or {})
    header = {name: value for name, value in header.items() if value is not DROP}
    if not typ:
        header.pop("typ")
    segments = [_b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)]
    signing_input = ".".join(segments)
    if alg in keys.HMAC_ALGORITHMS and (key is not None or alg != signer.alg):
        secret = (
            key if key is not None else signer.private if signer.symmetric else public_pem(signer)
        )
        raw = secret.encode() if isinstance(secret, str) else secret
        digest = hmac.new(raw, signing_input.encode(), getattr(hashlib, "sha" + alg[2:])).digest()
    else:
        digest = signer.sign(signing_input.encode())
    return f"{signing_input}.{_b64(digest)}"


def assert_refused(verify: Callable[[Any], Any], token: Any) -> TokenError:
    with pytest.raises(TokenError) as caught:
        verify(token)
    message = str(caught.value)
    assert message and "Traceback" not in message
    return caught.value


def fake_claims(
    n: int = 0,
    *,
    sid: str | None = None,
    sub: str = "u1",
    iat: int = 1000,
    exp: int | None = None,
    ver: int = 0,
) -> AccessClaims:
    """Verified claims as the bearer check holds them, without a token."""
    return AccessClaims(
        sub=sub,
        sid=sid or f"sid-{n}",
        jti=f"jti-{n}",
        scope="notes:read",
        username="alice",
        iat=iat,
        exp=iat + 600 if exp is None else exp,
        ver=ver,
    )
