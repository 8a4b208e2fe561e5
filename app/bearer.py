"""Bearer authentication: the middleware identifies the caller, `requires` authorises.

`BearerVerifier.verify(token)` is the whole check of an access token: the cache of verified
tokens, else signature and claims; then revocation, from this worker's copy while it is
trusted, else from Redis. Only routes decorated with `requires` pay for it; on those the
verified claims end up on `request.ctx.claims` (None when no Authorization header was sent).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, TypeVar

from sanic import HTTPResponse, Request, Sanic
from sanic_ext.extensions.openapi import openapi

from app.errors import (
    ERROR_SCHEMA,
    InsufficientScope,
    InvalidBearerRequest,
    InvalidToken,
    MissingToken,
    RevokedToken,
)
from app.observability import METRICS, count
from app.revocation import Revocations
from app.tokens import AccessClaims, TokenError, Tokens

Handler = Callable[..., Awaitable[HTTPResponse]]
H = TypeVar("H", bound=Handler)

_SCOPES_ATTRIBUTE = "__requires_scopes__"
# the OpenAPI security schemes a `requires` route accepts, either one (app.apispec)
BEARER_SCHEME, OAUTH2_SCHEME = "bearer", "oauth2"
_cache_hit = METRICS.counter("bearer_cache", "hit")
_cache_miss = METRICS.counter("bearer_cache", "miss")


class VerifiedTokens:
    """Already-verified access tokens, keyed by the whole token string.

    A hit skips only the signature and claim checks, which cannot change for the same bytes;
    the expiry and the revocation state are still checked on every request.
    """

    def __init__(self, max_size: int = 10_000):
        self.max_size = max_size
        self._claims: dict[str, AccessClaims] = {}

    def get(self, token: str, now: float) -> AccessClaims | None:
        claims = self._claims.get(token)
        if claims is not None and claims.exp <= now:
            del self._claims[token]
            return None
        return claims

    def put(self, token: str, claims: AccessClaims) -> None:
        if len(self._claims) >= self.max_size:
            # Drop the oldest half (dicts keep insertion order): cheap, and bounded.
            for key in list(self._claims)[: self.max_size // 2]:
                del self._claims[key]
        self._claims[token] = claims

    def clear(self) -> None:
        """Forget every token: a key was removed (revoked), and what it signed must stop."""
        self._claims.clear()

    def __len__(self) -> int:
        return len(self._claims)


class BearerVerifier:
    def __init__(self, tokens: Tokens, revocations: Revocations, cache: VerifiedTokens):
        self.tokens = tokens
        self.revocations = revocations
        self.cache = cache

    async def verify(self, token: str) -> AccessClaims:
        """The claims of a valid, unrevoked access token; `InvalidToken` otherwise."""
        claims = self.cache.get(token, time.time())
        if claims is None:
            _cache_miss()
            try:
                claims = await self.tokens.verified_access(token)
            except TokenError as error:
                raise InvalidToken(f"The access token is invalid: {error}.") from None
            self.cache.put(token, claims)
        else:
            _cache_hit()
        revoked = self.revocations.check_copy(claims)
        if revoked is None:  # the in-process copy can't be trusted right now: ask Redis
            count("revocation_copy_fallbacks")
            revoked = await self.revocations.check_redis(claims)
        if revoked:
            raise RevokedToken()
        return claims


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when there is no header."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    token = token.strip()
    # RFC 6750 §2.1: b64token, one space; schemes compare case-insensitively
    if scheme.lower() != "bearer" or not token or " " in token:
        raise InvalidBearerRequest()
    return token


async def authenticate(request: Request) -> None:
    """Request middleware: the verified claims of the caller, on `requires` routes only."""
    route = request.route
    # Sanic runs this for its stand-in request too (a 413, malformed HTTP): no route there.
    if route is None or not hasattr(route.handler, _SCOPES_ATTRIBUTE):
        return
    request.ctx.claims = None
    token = bearer_token(request.headers.get("authorization"))
    if token is not None:
        request.ctx.claims = await request.app.ctx.bearer.verify(token)


def requires(*scopes: str, optional: bool = False) -> Callable[[H], H]:
    """Mark a handler as needing a bearer access token holding every scope in `scopes`;
    `optional`: or none at all (the handler then finds `request.ctx.claims` None)."""
    needed = frozenset(scopes)
    scope_text = " ".join(scopes)

    def decorator(handler: H) -> H:
        @wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            claims: AccessClaims | None = request.ctx.claims
            if claims is None and optional:
                return await handler(request, *args, **kwargs)
            if claims is None:
                raise MissingToken()
            if not needed <= claims.scopes:
                raise InsufficientScope(scope=scope_text)
            return await handler(request, *args, **kwargs)

        setattr(wrapper, _SCOPES_ATTRIBUTE, needed)
        error = {"application/json": ERROR_SCHEMA}
        # a bearer token, or (the same thing to the server) one that Swagger UI's password
        # flow asked for with these scopes
        documented = openapi.secured(BEARER_SCHEME)(wrapper)
        documented = openapi.secured({OAUTH2_SCHEME: sorted(needed)})(documented)
        if optional:
            documented = openapi.secured({})(documented)  # or no token at all
        documented = openapi.response(401, error, "Missing, invalid or revoked token")(documented)
        documented = openapi.response(400, error, "Malformed request or header")(documented)
        documented = openapi.response(503, error, "PostgreSQL or Redis unavailable")(documented)
        if needed:
            documented = openapi.response(403, error, f"Needs scope {scope_text}")(documented)
        return documented  # type: ignore[return-value]

    return decorator


def caller(request: Request) -> AccessClaims:
    """The verified claims of the caller (on `requires` routes, where they are never None)."""
    claims: AccessClaims = request.ctx.claims
    return claims


async def _open(app: Sanic[Any, Any]) -> None:
    cache = VerifiedTokens()
    app.ctx.bearer = BearerVerifier(app.ctx.tokens, app.ctx.revocations, cache)
    app.ctx.keyring.on_removed(cache.clear)


def setup_bearer(app: Sanic[Any, Any]) -> None:
    """Per worker, after revocation: `app.ctx.bearer`; the middleware on every request."""
    app.before_server_start(_open)
    app.register_middleware(authenticate, "request")
