"""RFC 7662 introspection: what a token is and whether it is usable right now, revocation
included. Any token that is not valid, of ours, unexpired and unrevoked is `active: false`."""

from __future__ import annotations

from typing import Any

from app.bearer import BearerVerifier
from app.config import Settings
from app.db import Database
from app.errors import InvalidToken, RevokedToken
from app.stores import sessions as session_rows
from app.tokens import AccessClaims, RefreshClaims, TokenError, Tokens

INACTIVE: dict[str, Any] = {"active": False}


class Introspection:
    def __init__(self, settings: Settings, tokens: Tokens, bearer: BearerVerifier, db: Database):
        self.issuer = settings.jwt_issuer
        self.audience = settings.jwt_audience
        self.tokens = tokens
        self.bearer = bearer
        self.db = db

    async def introspect(self, token: str, hint: str | None) -> dict[str, Any]:
        """Access tokens are checked as a bearer check does (the revocation copy, else
        Redis); refresh tokens against their session in PostgreSQL. `hint` only orders."""
        order = [self._access, self._refresh]
        if hint == "refresh_token":
            order.reverse()
        for look in order:
            answer = await look(token)
            if answer is not None:
                return answer
        return INACTIVE

    async def _access(self, token: str) -> dict[str, Any] | None:
        try:
            claims: AccessClaims = await self.bearer.verify(token)
        except RevokedToken:  # ours, but revoked: no use trying it as a refresh token
            return INACTIVE
        except InvalidToken:
            return None
        return {
            "active": True,
            "token_type": "Bearer",
            "token_use": "access_token",
            "scope": claims.scope,
            "username": claims.username,
            **self._common(claims),
        }

    async def _refresh(self, token: str) -> dict[str, Any] | None:
        try:
            claims: RefreshClaims = await self.tokens.verified_refresh(token)
        except TokenError:
            return None
        row = await session_rows.refresh_active(self.db, claims.sid, claims.jti)
        if row is None:
            return INACTIVE
        return {
            "active": True,
            "token_use": "refresh_token",
            "scope": row["scope"],
            "username": row["username"],
            **self._common(claims),
        }

    def _common(self, claims: AccessClaims | RefreshClaims) -> dict[str, Any]:
        return {
            "sub": claims.sub,
            "iss": self.issuer,
            "aud": self.audience,
            "iat": claims.iat,
            "exp": claims.exp,
            "jti": claims.jti,
            "sid": claims.sid,
        }
