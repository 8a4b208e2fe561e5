"""Issue and verify the access and refresh JWTs. Pure: no I/O, no clock but the one passed in."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from app.config import Settings
from app.errors import ServiceUnavailable
from app.keys import SigningKey
from app.keyset import KeySet, retire_horizon
from app.verifier import (
    ACCESS_TYP,
    MAX_TOKEN_LENGTH,
    REFRESH_TYP,
    REQUIRED_CLAIMS,
    AccessClaims,
    TokenError,
    UnknownKey,
    access_claims,
    check_claims,
    decode,
    unverified_header,
)

__all__ = [
    "ACCESS_TYP",
    "MAX_TOKEN_LENGTH",
    "REFRESH_TYP",
    "REQUIRED_CLAIMS",
    "AccessClaims",
    "IssuedToken",
    "KeySource",
    "RefreshClaims",
    "STALE",
    "TokenError",
    "FixedKeys",
    "Tokens",
    "UnknownKey",
]

T = TypeVar("T")


class KeySource(Protocol):
    """Where the keys come from: a worker's `Keyring`, or `FixedKeys`."""

    keyset: KeySet[SigningKey] | None

    def can_sign(self) -> bool:
        """The keys were read lately enough to sign with (see keyset.SIGN_STALE_AFTER)."""
        ...

    async def reload_for_unknown(self) -> bool:
        """Read the keys again for a token with an unknown kid; False when not done now."""
        ...

    async def ready_to_sign(self) -> None:
        """Read the keys now when they are too old to sign with; KeysNotLoaded if that fails."""
        ...


class FixedKeys:
    """A key set that never changes (tests, tools)."""

    def __init__(self, keyset: KeySet[SigningKey] | None):
        self.keyset = keyset

    def can_sign(self) -> bool:
        return True

    async def reload_for_unknown(self) -> bool:
        return False

    async def ready_to_sign(self) -> None:
        return None


STALE = "The signing keys could not be read lately; try again shortly."


class KeysNotLoaded(ServiceUnavailable):
    description = "The signing keys are not loaded yet (PostgreSQL unavailable); try again."


def _b64(data: bytes) -> bytes:
    return base64.urlsafe_b64encode(data).rstrip(b"=")


@dataclass(frozen=True, slots=True)
class RefreshClaims:
    sub: str
    sid: str
    jti: str
    iat: int
    exp: int


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    jti: str
    exp: int


def new_id() -> str:
    return str(uuid.uuid4())


class Tokens:
    """Signs with the current key and verifies by `kid`, for one issuer and audience."""

    def __init__(self, settings: Settings, keys: KeySource | None = None):
        self.keys = keys
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.access_ttl = settings.access_token_ttl
        self.refresh_ttl = settings.refresh_token_ttl
        self.skew = settings.clock_skew
        self.horizon = retire_horizon(settings)
        # Ids derived from other ids: a refresh token's one successor, a pair's access token.
        self._derive = hmac.new(
            settings.jwt_secret.encode(), b"jwt-refresh-api: jti derivation", hashlib.sha256
        ).digest()

    def derived_id(self, purpose: str, jti: str) -> str:
        """A UUID that only `purpose` and `jti` determine (and this deployment's secret)."""
        digest = hmac.new(self._derive, f"{purpose}:{jti}".encode(), hashlib.sha256).digest()
        return str(uuid.UUID(bytes=digest[:16], version=4))

    def successor_jti(self, jti: str) -> str:
        """The `jti` of the one refresh token that refresh token `jti` may be exchanged for."""
        return self.derived_id("successor", jti)

    def _keyset(self) -> KeySet[SigningKey]:
        keyset = self.keys.keyset if self.keys is not None else None
        if keyset is None:
            raise KeysNotLoaded()
        return keyset

    def signing_kid(self) -> str:
        """The kid of the key that signs now."""
        current = self._keyset().current
        if current is None:
            raise KeysNotLoaded()
        return current.kid

    async def knows(self, kid: str | None) -> None:
        """Make sure key `kid` is loaded if it exists (a retry's pair, signed by a key another
        host just started signing with)."""
        if kid and self.keys is not None and kid not in self._keyset().keys:
            await self.keys.reload_for_unknown()

    async def ready_to_sign(self) -> None:
        """Before anything is written for a new pair: keys fresh enough to sign it, read again
        now if need be (the first request after PostgreSQL recovers need not wait for the
        worker's next reload)."""
        if self.keys is not None:
            await self.keys.ready_to_sign()

    def _signing_key(self, kid: str | None) -> SigningKey:
        """Key `kid` (a retry's pair is signed again by the key that signed it), else the
        current one."""
        keyset = self._keyset()
        if self.keys is not None and not self.keys.can_sign():
            raise KeysNotLoaded(STALE)
        key = keyset.keys.get(kid) if kid else None
        if key is None or key.kid == "":
            key = keyset.current
        if key is None:
            raise KeysNotLoaded()
        return key

    # -- issuing -----------------------------------------------------------------

    def issue_access(
        self,
        *,
        sub: str,
        sid: str,
        scope: str,
        username: str,
        now: int | None = None,
        jti: str | None = None,
        ver: int = 0,
        kid: str | None = None,
    ) -> IssuedToken:
        iat = int(time.time()) if now is None else now
        claims: dict[str, Any] = {"scope": scope, "username": username, "ver": ver}
        return self._sign(
            ACCESS_TYP, sub, sid, iat, iat + self.access_ttl, jti or new_id(), claims, kid
        )

    def issue_refresh(
        self,
        *,
        sub: str,
        sid: str,
        jti: str,
        session_expires: int,
        now: int | None = None,
        kid: str | None = None,
    ) -> IssuedToken:
        """A refresh token never outlives its session's absolute limit."""
        iat = int(time.time()) if now is None else now
        exp = min(iat + self.refresh_ttl, session_expires)
        return self._sign(REFRESH_TYP, sub, sid, iat, exp, jti, {"grant_type": "refresh"}, kid)

    def _sign(
        self,
        typ: str,
        sub: str,
        sid: str,
        iat: int,
        exp: int,
        jti: str,
        extra: dict[str, Any],
        kid: str | None,
    ) -> IssuedToken:
        key = self._signing_key(kid)
        payload = {
            "iss": self._issuer,
            "aud": self._audience,
            "sub": sub,
            "iat": iat,
            "exp": exp,
            "jti": jti,
            "sid": sid,
            **extra,
        }
        header = {"alg": key.alg, "typ": typ, "kid": key.kid}
        signing_input = (
            _b64(json.dumps(header, separators=(",", ":")).encode())
            + b"."
            + _b64(json.dumps(payload, separators=(",", ":")).encode())
        )
        token = signing_input + b"." + _b64(key.sign(signing_input))
        return IssuedToken(token.decode(), jti, exp)

    # -- verifying ---------------------------------------------------------------

    def verify_access(self, token: str) -> AccessClaims:
        return access_claims(self._verify(token, ACCESS_TYP, self.access_ttl))

    def verify_refresh(self, token: str) -> RefreshClaims:
        claims = self._verify(token, REFRESH_TYP, self.refresh_ttl)
        if claims.get("grant_type") != "refresh":
            raise TokenError("not a refresh token")
        return RefreshClaims(
            claims["sub"], claims["sid"], claims["jti"], claims["iat"], claims["exp"]
        )

    async def verified_access(self, token: str) -> AccessClaims:
        """`verify_access`, again after reading the keys if the token's kid was unknown (a
        key another host just started signing with)."""
        return await self._retrying(self.verify_access, token)

    async def verified_refresh(self, token: str) -> RefreshClaims:
        return await self._retrying(self.verify_refresh, token)

    async def _retrying(self, verify: Callable[[str], T], token: str) -> T:
        try:
            return verify(token)
        except UnknownKey:
            if self.keys is None or not await self.keys.reload_for_unknown():
                raise
        return verify(token)

    def _verify(self, token: str, typ: str, max_lifetime: int) -> dict[str, Any]:
        header = unverified_header(token)
        now = time.time()
        # Each kid is pinned to its key's one algorithm; a token without a kid can only be
        # one an earlier release signed with JWT_SECRET, while that legacy key is accepted.
        key = self._keyset().verifying(header.get("kid"), now, self.horizon)
        if key is None:
            raise UnknownKey("the token's key is unknown or retired")
        claims = decode(
            token, key.public, key.alg, issuer=self._issuer, audience=self._audience, skew=self.skew
        )
        check_claims(header, claims, typ, max_lifetime, now)
        return claims
