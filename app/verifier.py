"""Verify jwt-refresh-api's access tokens in any asyncio service, from its JWKS alone.

Imports nothing of the server: PyJWT (with cryptography) and, for fetching, httpx. The
claim checks here are the service's own (`app.tokens` calls them), so a token this module
accepts is one the service accepts, short of revocation: for routes that need a logout to
count at once, ask the service with `Introspection`.

    verifier = Verifier("https://auth.example.com/.well-known/jwks.json",
                        issuer="https://auth.example.com", audience="notes-api")
    claims = await verifier.verify(token, scopes={"notes:read"})
"""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import jwt

ACCESS_TYP = "at+jwt"  # RFC 9068
REFRESH_TYP = "refresh+jwt"
REQUIRED_CLAIMS = ("iss", "aud", "sub", "iat", "exp", "jti", "sid")
# Our tokens are a few hundred bytes; anything far larger is refused before any parsing.
MAX_TOKEN_LENGTH = 4096
# Compact JWS with unpadded base64url (RFC 7515 §2). PyJWT also accepts `=` padding, which
# would give every token a second spelling that verifies; one spelling only.
COMPACT_JWS = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")
ASYMMETRIC = ("ES256", "EdDSA", "RS256")


class TokenError(Exception):
    """The token cannot be used; the message is safe to show to the client."""


class UnknownKey(TokenError):
    """The token names a key (`kid`) that is not, or no longer, among the verifying keys."""


class InsufficientScope(Exception):
    """A valid token without every scope the route needs (answer 403)."""

    def __init__(self, needed: Iterable[str]):
        self.needed = " ".join(sorted(needed))
        super().__init__(f"the token needs the scope {self.needed!r}")


class KeysUnavailable(Exception):
    """The verifying keys can't be had right now (answer 503, not 401)."""


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


def unverified_header(token: Any) -> dict[str, Any]:
    """The JOSE header of a token that has the shape of one of ours (nothing verified yet)."""
    if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("the token is empty or too long")
    if not COMPACT_JWS.fullmatch(token):
        raise TokenError("the token is not a compact JWS in unpadded base64url")
    try:
        header: dict[str, Any] = jwt.get_unverified_header(token)
    except Exception:  # noqa: BLE001 - every decoding failure is the client's bad token
        raise TokenError("the token is malformed or its signature is invalid") from None
    if "kid" in header and (not isinstance(header["kid"], str) or not header["kid"]):
        raise TokenError("the token's kid header must be a non-empty string")
    return header


def decode(
    token: str, key: Any, algorithm: str, *, issuer: str, audience: str, skew: int
) -> dict[str, Any]:
    """Signature (by `key`, with exactly `algorithm`), `iss`, `aud` and `iat`/`nbf` checked;
    the rest is `check_claims`'s. `jku`, `x5u`, `jwk` and `x5c` headers are never looked at."""
    try:
        decoded = jwt.api_jwt.decode_complete(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            # CLOCK_SKEW for a token from a host whose clock runs ahead (`iat`, `nbf`);
            # never for `exp`, checked by check_claims: no token lives longer than it says.
            leeway=skew,
            options={"require": list(REQUIRED_CLAIMS), "strict_aud": True, "verify_exp": False},
        )
    except jwt.ImmatureSignatureError:
        raise TokenError("the token is not valid yet") from None
    except Exception:  # noqa: BLE001 - every decoding failure is the client's bad token
        raise TokenError("the token is malformed or its signature is invalid") from None
    if decoded["header"].get("alg") != algorithm:
        raise TokenError("the token's algorithm is not its key's")
    claims: dict[str, Any] = decoded["payload"]
    return claims


def check_claims(
    header: dict[str, Any], claims: dict[str, Any], typ: str, max_lifetime: int, now: float
) -> None:
    """What every token of ours must be, after its signature: type, times, ids."""
    if header.get("typ") != typ:
        raise TokenError(f"the token's type must be {typ}")
    for name in ("iat", "exp"):
        if type(claims[name]) is not int:
            raise TokenError(f"the {name} claim must be an integer")
    if claims["exp"] <= now:
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


def access_claims(claims: dict[str, Any]) -> AccessClaims:
    """The claims of an access token (a refresh token is refused)."""
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


def _max_age(cache_control: str | None, default: float, low: float, high: float) -> float:
    match = re.search(r"(?:^|[,\s])max-age=(\d+)", cache_control or "")
    return min(max(float(match.group(1)) if match else default, low), high)


class Verifier:
    """The service's access tokens, verified against its published keys.

    The JWKS is fetched on first use and again when its `Cache-Control: max-age` has passed;
    a token with a `kid` not in it triggers a refetch at most once every `min_refetch`
    seconds (random `kid`s must not turn into a request storm), and concurrent verifications
    share one fetch. Only asymmetric keys are used, each pinned to its own `alg`.
    """

    def __init__(
        self,
        jwks_url: str,
        *,
        issuer: str = "jwt-refresh-api",
        audience: str = "jwt-refresh-api",
        max_lifetime: int = 600,  # the service's ACCESS_TOKEN_TTL
        clock_skew: int = 30,  # the service's CLOCK_SKEW
        min_refetch: float = 5.0,
        http: Any = None,  # an httpx.AsyncClient; one of its own by default
    ):
        self.jwks_url = jwks_url
        self.issuer, self.audience = issuer, audience
        self.max_lifetime, self.clock_skew = max_lifetime, clock_skew
        self.min_refetch = min_refetch
        self._http = http
        self._keys: dict[str, tuple[Any, str]] = {}
        self._fetched_at = float("-inf")
        self._fresh_until = float("-inf")
        self._fetching: asyncio.Task[None] | None = None
        self.fetches = 0

    async def verify(self, token: str, *, scopes: Iterable[str] = ()) -> AccessClaims:
        """The claims of a valid access token holding every scope in `scopes`; raises
        `TokenError` (401), `InsufficientScope` (403) or `KeysUnavailable` (503)."""
        header = unverified_header(token)
        kid = header.get("kid")
        if kid is None:
            raise UnknownKey("the token has no kid")
        if time.monotonic() >= self._fresh_until:
            await self._refetch(force=self._fetched_at == float("-inf"))
        if kid not in self._keys:
            await self._refetch(force=False)
        if kid not in self._keys:
            raise UnknownKey("the token's key is unknown")
        key, algorithm = self._keys[kid]
        claims = decode(
            token,
            key,
            algorithm,
            issuer=self.issuer,
            audience=self.audience,
            skew=self.clock_skew,
        )
        check_claims(header, claims, ACCESS_TYP, self.max_lifetime, time.time())
        verified = access_claims(claims)
        needed = frozenset(scopes)
        if not needed <= verified.scopes:
            raise InsufficientScope(needed)
        return verified

    async def _refetch(self, *, force: bool) -> None:
        if self._fetching is None:
            if not force and time.monotonic() - self._fetched_at < self.min_refetch:
                return
            self._fetching = asyncio.ensure_future(self._fetch())
            self._fetching.add_done_callback(self._fetched)
        await asyncio.shield(self._fetching)

    def _fetched(self, task: asyncio.Task[None]) -> None:
        if self._fetching is task:
            self._fetching = None
        if not task.cancelled():
            task.exception()  # retrieved: a failure is its waiters' to report

    async def _fetch(self) -> None:
        import httpx  # only a fetching verifier needs it

        self._fetched_at = time.monotonic()
        self.fetches += 1
        try:
            if self._http is None:
                self._http = httpx.AsyncClient(timeout=5.0)
            response = await self._http.get(self.jwks_url)
            response.raise_for_status()
            document = response.json()
        except Exception as error:  # noqa: BLE001 - any failure: keep the keys we have
            self._fresh_until = time.monotonic() + self.min_refetch  # and back off
            if not self._keys:
                raise KeysUnavailable(
                    f"the JWKS at {self.jwks_url} can't be had: {error}"
                ) from None
            return
        parsed = parse_jwks(document)
        if parsed or not self._keys:  # an empty or unreadable set never replaces good keys
            self._keys = parsed
        max_age = _max_age(response.headers.get("cache-control"), 300.0, self.min_refetch, 3600.0)
        self._fresh_until = time.monotonic() + max_age

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()


def parse_jwks(document: Any) -> dict[str, tuple[Any, str]]:
    """kid -> (public key, its one algorithm) of the usable signing keys of a JWKS."""
    keys: dict[str, tuple[Any, str]] = {}
    entries = document.get("keys") if isinstance(document, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, dict) or entry.get("use", "sig") != "sig":
            continue
        kid, algorithm = entry.get("kid"), entry.get("alg")
        if not isinstance(kid, str) or algorithm not in ASYMMETRIC or "d" in entry:
            continue  # no kid, a symmetric or unknown algorithm, or a private key
        try:
            keys[kid] = (jwt.PyJWK(entry, algorithm).key, algorithm)
        except Exception:  # noqa: BLE001, S112 - one unusable key does not spoil the others
            continue
    return keys


class Introspection:
    """RFC 7662 introspection at the service, for routes where a logout must count at once.

    Logs in as a service account holding the `introspect` scope (`/auth/token`, password
    grant), refreshes its token before it expires, and asks `POST /auth/introspect`.
    """

    def __init__(self, base_url: str, username: str, password: str, *, http: Any = None):
        self.base_url = base_url.rstrip("/")
        self._credentials = {"username": username, "password": password}
        self._http = http
        self._token: dict[str, Any] | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def active(self, token: str) -> dict[str, Any] | None:
        """The token's introspection (RFC 7662 §2.2) if active, else None."""
        http = await self._client()
        caller = await self._access(stale=None)
        for attempt in range(2):
            answer = await http.post(
                f"{self.base_url}/auth/introspect",
                data={"token": token},
                headers={"Authorization": f"Bearer {caller}"},
            )
            if answer.status_code == 401 and attempt == 0:
                # our own token was revoked or expired: a fresh one, once
                caller = await self._access(stale=caller)
                continue
            answer.raise_for_status()
            result: dict[str, Any] = answer.json()
            return result if result.get("active") is True else None
        return None

    async def _client(self) -> Any:
        if self._http is None:
            import httpx

            self._http = httpx.AsyncClient(timeout=5.0)
        return self._http

    async def _access(self, *, stale: str | None) -> str:
        """The service account's access token; a new one when it expires soon, or when it is
        `stale` (refused) and no other task has replaced it meanwhile. A refresh first; a
        login only when the refresh is refused, so no session is left behind per renewal."""
        async with self._lock:
            token = self._token
            refused = token is not None and token["access_token"] == stale
            if token is None or refused or time.monotonic() >= self._expires:
                http = await self._client()
                answer = None
                if token is not None:
                    answer = await http.post(
                        f"{self.base_url}/auth/token",
                        data={
                            "grant_type": "refresh_token",
                            "refresh_token": token["refresh_token"],
                        },
                    )
                if answer is None or answer.status_code in (400, 401):
                    grant = {"grant_type": "password", **self._credentials}
                    answer = await http.post(f"{self.base_url}/auth/token", data=grant)
                answer.raise_for_status()
                self._token = token = answer.json()
                self._expires = time.monotonic() + max(1, token["expires_in"] - 30)
            return str(token["access_token"])

    async def aclose(self) -> None:
        if self._http is not None:
            await self._http.aclose()
