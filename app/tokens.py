"""Issue and verify the access and refresh JWTs. Pure: no I/O, no clock but the one passed in."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

from app.config import Settings

ACCESS_TYP = "at+jwt"  # RFC 9068
REFRESH_TYP = "refresh+jwt"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "sid")
# Our tokens are a few hundred bytes; anything far larger is refused before any parsing.
MAX_TOKEN_LENGTH = 4096
# Compact JWS with unpadded base64url (RFC 7515 §2). PyJWT also accepts `=` padding, which
# would give every token a second spelling that verifies; one spelling only.
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


class TokenError(Exception):
    """The token cannot be used; the message is safe to show to the client."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    sub: str
    sid: str
    jti: str
    scope: str
    username: str
    iat: int
    exp: int
    # The user's token version when it was issued: a cut-off (log out everywhere, a password
    # change, a disable, a scope removed) raises the version and refuses every token below.
    ver: int = 0

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(self.scope.split())


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
    """Signs and verifies with one key, algorithm, issuer and audience."""

    def __init__(self, settings: Settings):
        self._key = settings.jwt_secret
        self._algorithm = settings.jwt_algorithm
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self.access_ttl = settings.access_token_ttl
        self.refresh_ttl = settings.refresh_token_ttl
        self.skew = settings.clock_skew
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
    ) -> IssuedToken:
        iat = int(time.time()) if now is None else now
        claims: dict[str, Any] = {"scope": scope, "username": username, "ver": ver}
        return self._sign(ACCESS_TYP, sub, sid, iat, iat + self.access_ttl, jti or new_id(), claims)

    def issue_refresh(
        self, *, sub: str, sid: str, jti: str, session_expires: int, now: int | None = None
    ) -> IssuedToken:
        """A refresh token never outlives its session's absolute limit."""
        iat = int(time.time()) if now is None else now
        exp = min(iat + self.refresh_ttl, session_expires)
        return self._sign(REFRESH_TYP, sub, sid, iat, exp, jti, {"grant_type": "refresh"})

    def _sign(
        self, typ: str, sub: str, sid: str, iat: int, exp: int, jti: str, extra: dict[str, Any]
    ) -> IssuedToken:
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
        token = jwt.encode(payload, self._key, algorithm=self._algorithm, headers={"typ": typ})
        return IssuedToken(token, jti, exp)

    # -- verifying ---------------------------------------------------------------

    def verify_access(self, token: str) -> AccessClaims:
        claims = self._verify(token, ACCESS_TYP, self.access_ttl)
        if "grant_type" in claims:
            raise TokenError("a refresh token is not an access token")
        scope, username = claims.get("scope"), claims.get("username", "")
        if not isinstance(scope, str) or not isinstance(username, str):
            raise TokenError("the token's scope or username claim is malformed")
        version = claims.get("ver", 0)  # tokens issued before versions existed: version 0
        if type(version) is not int or version < 0:
            raise TokenError("the ver claim must be a whole number")
        return AccessClaims(
            claims["sub"],
            claims["sid"],
            claims["jti"],
            scope,
            username,
            claims["iat"],
            claims["exp"],
            version,
        )

    def verify_refresh(self, token: str) -> RefreshClaims:
        claims = self._verify(token, REFRESH_TYP, self.refresh_ttl)
        if claims.get("grant_type") != "refresh":
            raise TokenError("not a refresh token")
        return RefreshClaims(
            claims["sub"], claims["sid"], claims["jti"], claims["iat"], claims["exp"]
        )

    def _verify(self, token: str, typ: str, max_lifetime: int) -> dict[str, Any]:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise TokenError("the token is empty or too long")
        if not COMPACT_JWS.fullmatch(token):
            raise TokenError("the token is not a compact JWS in unpadded base64url")
        try:
            decoded = jwt.api_jwt.decode_complete(
                token,
                self._key,
                algorithms=[self._algorithm],
                audience=self._audience,
                issuer=self._issuer,
                # CLOCK_SKEW for a token from a host whose clock runs ahead (`iat`, `nbf`);
                # never for `exp`, checked below: no token lives longer than it says.
                leeway=self.skew,
                options={
                    "require": list(REQUIRED_CLAIMS),
                    "strict_aud": True,
                    "verify_exp": False,
                },
            )
        except jwt.ImmatureSignatureError:
            raise TokenError("the token is not valid yet") from None
        except Exception:  # noqa: BLE001 - every decoding failure is the client's bad token
            raise TokenError("the token is malformed or its signature is invalid") from None

        header: dict[str, Any] = decoded["header"]
        claims: dict[str, Any] = decoded["payload"]
        if header.get("typ") != typ:
            raise TokenError(f"the token's type must be {typ}")
        for name in ("iat", "exp"):
            if type(claims[name]) is not int:
                raise TokenError(f"the {name} claim must be an integer")
        if claims["exp"] <= time.time():
            raise TokenError("the token has expired")
        for name in ("sub", "sid", "jti"):
            if not isinstance(claims[name], str) or not claims[name]:
                raise TokenError(f"the {name} claim must be a non-empty string")
        if not 0 < claims["exp"] - claims["iat"] <= max_lifetime:
            raise TokenError("the token's lifetime is longer than allowed")
        try:
            uuid.UUID(claims["sid"])
        except ValueError:
            raise TokenError("the sid claim is malformed") from None
        return claims
