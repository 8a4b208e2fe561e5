"""Starting and ending sessions: login and password change start one; logout, log out
everywhere, RFC 7009 revocation, reuse detection and disabling an account end them.

Ending is PostgreSQL first (the refresh tokens die and the record is kept), then Redis (the
access tokens die). If Redis fails the caller gets a 503 while its access token still works,
so it can simply retry: the Redis marks are derived from what PostgreSQL recorded, and
writing them again is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from app.accounts.responses import TokenResponse, issue_pair
from app.config import Settings
from app.db import Database
from app.errors import NotFound
from app.revocation import Revocations
from app.stores import sessions as session_rows
from app.stores import users as user_rows
from app.tokens import AccessClaims, RefreshClaims, TokenError, Tokens, new_id


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """Where a login or refresh came from, shown in the session list."""

    user_agent: str | None = None
    ip: str | None = None


class Sessions:
    def __init__(self, settings: Settings, tokens: Tokens, db: Database, revocations: Revocations):
        self.settings = settings
        self.tokens = tokens
        self.db = db
        self.revocations = revocations

    async def start(
        self, user_id: str, username: str, scope: str, client: ClientInfo
    ) -> TokenResponse:
        now = int(time.time())
        sid, jti = new_id(), new_id()
        expires = now + self.settings.session_max_age
        await session_rows.create(
            self.db,
            sid=sid,
            user_id=user_id,
            scope=scope,
            jti=jti,
            expires_at=datetime.fromtimestamp(expires, UTC),
            user_agent=client.user_agent,
            ip=client.ip,
        )
        return issue_pair(
            self.tokens,
            user_id=user_id,
            username=username,
            sid=sid,
            scope=scope,
            refresh_jti=jti,
            session_expires=expires,
            now=now,
        )

    async def end(self, sids: list[str], *, reason: str) -> None:
        for sid in sids:
            await session_rows.revoke(self.db, sid, reason)
        await self.revocations.revoke(sids)

    async def end_own(self, user_id: str, sid: str) -> None:
        """DELETE /auth/sessions/{id}: another user's session is as unknown as a missing one."""
        if not await session_rows.is_active_for(self.db, sid, user_id):
            raise NotFound("No such session.")
        await self.end([sid], reason="ended_by_user")

    async def end_all(
        self,
        user_id: str,
        reason: str,
        *,
        password_hash: str | None = None,
        disable: bool = False,
    ) -> None:
        """End every session of the user and refuse every access token issued before now."""
        now = int(time.time())
        async with self.db.transaction() as tx:
            if password_hash is not None:
                await user_rows.set_password_hash(tx, user_id, password_hash)
            if disable:
                await user_rows.set_disabled(tx, user_id, True)
            await user_rows.set_tokens_valid_after(tx, user_id, datetime.fromtimestamp(now, UTC))
            await session_rows.revoke_all(tx, user_id, reason)
            # Every session ended within a revocation's lifetime: this call's, and those of
            # an earlier attempt whose Redis step failed.
            sids = await session_rows.recently_revoked(tx, user_id, self.revocations.revoked_ttl)
        await self.revocations.revoke(sids, user_id=user_id, not_before=now)

    async def revoke_token(self, token: str, hint: str | None) -> None:
        """RFC 7009: end the session a token of ours belongs to; anything else is ignored."""
        verifiers: list[Callable[[str], AccessClaims | RefreshClaims]] = [
            self.tokens.verify_refresh,
            self.tokens.verify_access,
        ]
        if hint == "access_token":
            verifiers.reverse()
        for verify in verifiers:
            try:
                sid = verify(token).sid
            except TokenError:
                continue
            await self.end([sid], reason="revoked")
            return
