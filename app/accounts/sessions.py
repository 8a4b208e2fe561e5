"""Starting and ending sessions: login and password change start one; logout, log out
everywhere, RFC 7009 revocation, reuse detection and disabling an account end them.

Ending is PostgreSQL first (the refresh tokens die and the record is kept), then Redis (the
access tokens die). If Redis fails the caller gets a 503 while its access token still works,
so it can simply retry: the Redis marks are derived from what PostgreSQL recorded, and
writing them again is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from app.accounts.responses import TokenResponse, issue_pair
from app.config import Settings
from app.db import Database, Queryable
from app.errors import InvalidGrant, NotFound
from app.origin import ClientInfo
from app.revocation import Revocations
from app.stores import events
from app.stores import sessions as session_rows
from app.stores import users as user_rows
from app.tokens import AccessClaims, RefreshClaims, TokenError, Tokens, new_id

NO_CLIENT = ClientInfo()  # the command line: no address, agent or request

# Why a session ended -> the audit event that records it.
EVENT_OF_REASON = {
    "logout": "logout",
    "logout_all": "logout_all",
    "ended_by_user": "session_ended",
    "revoked": "token_revoked",
    "refresh_token_reuse": "refresh_reuse",
    "account_disabled": "account_disabled",
}


class Sessions:
    def __init__(self, settings: Settings, tokens: Tokens, db: Database, revocations: Revocations):
        self.settings = settings
        self.tokens = tokens
        self.db = db
        self.revocations = revocations

    async def start(
        self,
        user: asyncpg.Record,
        scope: str,
        client: ClientInfo,
        *,
        tx: Queryable | None = None,
        event: str = "login",
        detail: dict[str, Any] | None = None,
    ) -> TokenResponse | None:
        """A new session for `user` as read and verified (not disabled, at its token version
        as read), with `scope` within its current scopes, recorded as `event`; None when the
        user changed meanwhile (a password change, a disable, a log out everywhere). Outside
        a transaction, the user's oldest sessions beyond MAX_SESSIONS_PER_USER end."""
        await self.tokens.ready_to_sign()
        now = int(time.time())
        sid, jti = new_id(), new_id()
        expires = now + self.settings.session_max_age
        version = int(user["token_version"])
        granted = await session_rows.create(
            tx or self.db,
            sid=sid,
            user_id=str(user["id"]),
            scope=scope,
            jti=jti,
            expires_at=datetime.fromtimestamp(expires, UTC),
            client=client,
            version=version,
            event=event,
            detail=detail,
        )
        if granted is None:
            return None
        if tx is None:
            keep = self.settings.max_sessions_per_user
            user_id = str(user["id"])
            trimmed = await session_rows.trim(self.db, user_id, keep, client)
            # and any ended lately whose revocation did not reach Redis (this login's earlier
            # attempt met an outage after its trim, say)
            earlier = await self._unpublished(self.db, user_id, trimmed)
            if trimmed or earlier:
                await self.revocations.revoke([*trimmed, *earlier])
        return issue_pair(
            self.tokens,
            user_id=str(user["id"]),
            username=user["username"],
            sid=sid,
            scope=granted,
            refresh_jti=jti,
            session_expires=expires,
            issued_at=now,
            version=version,
            now=now,
        )

    async def end(
        self,
        sids: list[str],
        *,
        reason: str,
        client: ClientInfo = NO_CLIENT,
        actor_id: str | None = None,
    ) -> None:
        """End sessions, each recorded as the audit event of `reason`; only what changed is
        published to the workers: a session this call ended, or one ended recently whose
        Redis mark is missing (a retry after a failed Redis step). Ending an ended session
        again (RFC 7009 with an old token) costs no publish and records nothing."""
        changed = []
        event = EVENT_OF_REASON[reason]
        for sid in sids:
            if await session_rows.revoke(
                self.db, sid, reason, event=event, client=client, actor_id=actor_id
            ):
                changed.append(sid)
            elif await session_rows.ended_within(self.db, sid, self.revocations.revoked_ttl):
                changed.append(sid)
        await self.revocations.revoke(await self.revocations.unmarked(changed))

    async def end_own(self, user_id: str, sid: str, client: ClientInfo = NO_CLIENT) -> None:
        """DELETE /auth/sessions/{id}: another user's session is as unknown as a missing one."""
        if not await session_rows.is_active_for(self.db, sid, user_id):
            raise NotFound("No such session.")
        await self.end([sid], reason="ended_by_user", client=client)

    async def end_all(
        self,
        user_id: str,
        reason: str,
        *,
        client: ClientInfo = NO_CLIENT,
        disable: bool = False,
        actor_id: str | None = None,
    ) -> None:
        """End every session of the user and refuse every access token issued until now,
        recorded as one audit event (`logout_all`, `account_disabled`)."""
        async with self.db.transaction() as tx:
            if disable:
                await user_rows.set_disabled(tx, user_id, True)
            version = await user_rows.cut_off(tx, user_id)
            ended = await self._end_in(tx, user_id, reason)
            await events.record(
                tx,
                EVENT_OF_REASON[reason],
                user_id,
                client,
                actor_id=actor_id,
                detail={"sessions_ended": len(ended)},
            )
        await self.revocations.revoke(ended, user_id=user_id, version=version)

    async def restart(
        self, user: asyncpg.Record, scope: str, client: ClientInfo, *, new_hash: str
    ) -> TokenResponse | None:
        """A password change: set `new_hash`, end every session and refuse every token issued
        until now, and start one new session, all in one transaction and only while the user
        is as read (its token version) and not disabled. None when the user changed."""
        user_id = str(user["id"])
        async with self.db.transaction() as tx:
            changed = await user_rows.cut_off_with_password(
                tx, user_id, int(user["token_version"]), new_hash
            )
            if changed is None:
                return None
            ended = await self._end_in(tx, user_id, "password_changed")
            tokens = await self.start(
                changed,
                scope,
                client,
                tx=tx,
                event="password_changed",
                detail={"sessions_ended": len(ended)},
            )
        await self.revocations.revoke(ended, user_id=user_id, version=int(changed["token_version"]))
        return tokens

    async def _end_in(self, tx: Queryable, user_id: str, reason: str) -> list[str]:
        """End every live session of the user; those to publish: the ones this call ended, and
        those ended lately whose Redis step had failed."""
        ended = await session_rows.revoke_all(tx, user_id, reason)
        return [*ended, *await self._unpublished(tx, user_id, ended)]

    async def _unpublished(self, db: Queryable, user_id: str, besides: list[str]) -> list[str]:
        """The user's sessions ended lately (their access tokens may live) whose revocation
        Redis does not hold: a retry after a failed Redis step publishes them."""
        recent = await session_rows.recently_revoked(db, user_id, self.revocations.revoked_ttl)
        return await self.revocations.unmarked([sid for sid in recent if sid not in besides])

    async def log_out_with(
        self, refresh_token: str, client: ClientInfo, bind: Callable[[str], None] | None = None
    ) -> str:
        """End the session of a refresh token (a logout without an access token: a browser
        app's cookie); `bind(sid)` may refuse first. Its sid; InvalidGrant for a token that
        is not a refresh token of ours."""
        try:
            sid = (await self.tokens.verified_refresh(refresh_token)).sid
        except TokenError as error:
            raise InvalidGrant(f"The refresh token is invalid: {error}.") from None
        if bind is not None:
            bind(sid)
        await self.end([sid], reason="logout", client=client)
        return sid

    async def revoke_token(
        self, token: str, hint: str | None, client: ClientInfo = NO_CLIENT
    ) -> None:
        """RFC 7009: end the session a token of ours belongs to; anything else is ignored."""
        verifiers: list[Callable[[str], Awaitable[AccessClaims | RefreshClaims]]] = [
            self.tokens.verified_refresh,
            self.tokens.verified_access,
        ]
        if hint == "access_token":
            verifiers.reverse()
        for verify in verifiers:
            try:
                sid = (await verify(token)).sid
            except TokenError:
                continue
            await self.end([sid], reason="revoked", client=client)
            return
