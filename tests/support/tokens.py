"""Tokens signed by hand, for the unit tests of app/tokens.py and the bearer check: valid
claims to vary one at a time, and verified claims without a token."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Any

import jwt
import pytest

from app.config import Settings
from app.tokens import ACCESS_TYP, AccessClaims, TokenError
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


def sign(
    claims: Any,
    typ: str | None = ACCESS_TYP,
    *,
    key: str = SECRET,
    algorithm: str = "HS256",
    headers: dict[str, Any] | None = None,
) -> str:
    """Sign any JSON payload (object or not) with an explicit JOSE header."""
    header: dict[str, Any] = {"typ": typ}  # PyJWS drops a falsy typ instead of adding "JWT"
    header.update(headers or {})
    payload = json.dumps(claims, separators=(",", ":")).encode()
    token: str = jwt.api_jws.encode(payload, key, algorithm=algorithm, headers=header)
    if not header["typ"]:
        assert "typ" not in jwt.get_unverified_header(token)
    return token


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
