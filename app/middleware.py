"""Bearer authentication: the middleware identifies the caller, `requires` authorises.

Only routes decorated with `requires` pay for token verification; on those the verified
claims end up on `request.ctx.auth` (None when no Authorization header was sent).
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
)
from app.tokens import AccessClaims, TokenError

Handler = Callable[..., Awaitable[HTTPResponse]]
H = TypeVar("H", bound=Handler)

_AUTH_ATTRIBUTE = "__requires_scopes__"


def requires(*scopes: str) -> Callable[[H], H]:
    """Mark a handler as needing a bearer access token holding every scope in `scopes`."""
    needed = frozenset(scopes)
    scope_text = " ".join(scopes)

    def decorator(handler: H) -> H:
        @wraps(handler)
        async def wrapper(request: Request, *args: Any, **kwargs: Any) -> HTTPResponse:
            claims: AccessClaims | None = request.ctx.auth
            if claims is None:
                raise MissingToken()
            if not needed <= claims.scopes:
                raise InsufficientScope(scope=scope_text)
            return await handler(request, *args, **kwargs)

        setattr(wrapper, _AUTH_ATTRIBUTE, needed)
        error = {"application/json": ERROR_SCHEMA}
        documented = openapi.secured("bearer")(wrapper)
        documented = openapi.response(401, error, "Missing, invalid or revoked token")(documented)
        documented = openapi.response(400, error, "Malformed request or header")(documented)
        documented = openapi.response(503, error, "PostgreSQL or Redis unavailable")(documented)
        if needed:
            documented = openapi.response(403, error, f"Needs scope {scope_text}")(documented)
        return documented  # type: ignore[return-value]

    return decorator


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
    route = request.route
    # Sanic runs this for its stand-in request too (a 413, malformed HTTP): no route there.
    if route is None or not hasattr(route.handler, _AUTH_ATTRIBUTE):
        return
    request.ctx.auth = None
    token = bearer_token(request.headers.get("authorization"))
    if token is None:
        return
    app_ctx = request.app.ctx
    claims = app_ctx.verified.get(token, time.time())
    if claims is None:
        try:
            claims = app_ctx.tokens.verify_access(token)
        except TokenError as error:
            raise InvalidToken(f"The access token is invalid: {error}.") from None
        app_ctx.verified.put(token, claims)
    revoked = app_ctx.mirror.check(claims)
    if revoked is None:  # the in-process copy can't be trusted right now: ask Redis
        revoked = await app_ctx.revocation.is_revoked(claims)
        if revoked is None:  # Redis lost its data (restart, flush): rebuild from PostgreSQL
            await app_ctx.auth.reseed_revocations()
            revoked = await app_ctx.revocation.is_revoked(claims)
    if revoked:
        raise InvalidToken("The access token has been revoked.")
    request.ctx.auth = claims


def setup_middleware(app: Sanic[Any, Any]) -> None:
    app.register_middleware(authenticate, "request")
