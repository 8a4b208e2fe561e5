"""The token response (login, refresh, token endpoint, password change), defined once: the
handlers send it, and the OpenAPI document's schema is derived from it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from app.errors import InvalidGrant
from app.tokens import Tokens


@dataclass(frozen=True, slots=True)
class TokenResponse:
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int
    refresh_token: str | None  # None: in the refresh cookie instead (app.cookies)
    refresh_expires_in: int
    scope: str
    account_id: str
    session_id: str
    csrf_token: str | None = None  # with the refresh cookie: the session's X-CSRF-Token

    def as_json(self) -> dict[str, Any]:
        return {name: value for name, value in asdict(self).items() if value is not None}


def issue_pair(
    tokens: Tokens,
    *,
    user_id: str,
    username: str,
    sid: str,
    scope: str,
    refresh_jti: str,
    session_expires: int,
    issued_at: int,
    version: int,
    now: int,
    kid: str | None = None,
) -> TokenResponse:
    """The access token and the refresh token `refresh_jti` of one pair, issued at
    `issued_at`, signed by key `kid` (None: the current key). Everything in them follows
    from the arguments, so a pair issued again (a retried refresh) is the same bytes; the
    lifetimes are counted from `now`."""
    access = tokens.issue_access(
        sub=user_id,
        sid=sid,
        scope=scope,
        username=username,
        now=issued_at,
        jti=tokens.derived_id("access", refresh_jti),
        ver=version,
        kid=kid,
    )
    refresh = tokens.issue_refresh(
        sub=user_id,
        sid=sid,
        jti=refresh_jti,
        session_expires=session_expires,
        now=issued_at,
        kid=kid,
    )
    if refresh.exp <= now:
        raise InvalidGrant("The session has reached its maximum age; log in again.")
    return TokenResponse(
        access_token=access.token,
        token_type="Bearer",
        expires_in=max(0, access.exp - now),
        refresh_token=refresh.token,
        refresh_expires_in=refresh.exp - now,
        scope=scope,
        account_id=user_id,
        session_id=sid,
    )
