"""Refresh-token rotation: each refresh token has exactly one successor. A retry of a token
whose successor is still unused, within REFRESH_REUSE_GRACE, gets that same pair again; a
token used once its successor was, or later, is theft that revokes the session."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import asyncpg

from app.accounts.responses import TokenResponse, issue_pair
from app.accounts.rotation import RefreshState, Verdict, judge
from app.accounts.sessions import Sessions
from app.config import Settings
from app.db import Database
from app.errors import InvalidGrant
from app.observability import count
from app.origin import ClientInfo
from app.scopes import resolve_scope
from app.stores import sessions as session_rows
from app.stores.refresh_marks import UsedMarks, lifetime
from app.tokens import RefreshClaims, TokenError, Tokens

log = logging.getLogger("app.accounts")

ENDED = "The session of this refresh token has ended."
REPLACED = "This refresh token was replaced; use the newest one."
REUSED = "This refresh token was already used; the session has been revoked."


class Refresh:
    def __init__(
        self,
        settings: Settings,
        tokens: Tokens,
        db: Database,
        marks: UsedMarks,
        sessions: Sessions,
    ):
        self.settings = settings
        self.tokens = tokens
        self.db = db
        self.marks = marks
        self.sessions = sessions

    async def refresh(
        self,
        refresh_token: str,
        client: ClientInfo,
        scope: str | None = None,
        bind: Callable[[str], None] | None = None,
    ) -> TokenResponse:
        """Exchange a refresh token for its one successor pair.

        The successor's `jti` is derived from the token's, and its times are recorded with the
        rotation, so every answer for one token (the winner of a race, a retry after a lost
        response) is the same pair; the compare-and-set on the session row in PostgreSQL
        decides who rotates. The Redis mark only says that the token was used before: such a
        request first asks PostgreSQL what became of it instead of queueing on the row.
        Nothing is spent before the row moves, so a failure (503) leaves the token usable.
        `bind(sid)`, once the token is verified and before anything is written, may refuse
        (the CSRF value of a refresh cookie's session).
        """
        try:
            claims = await self.tokens.verified_refresh(refresh_token)
        except TokenError as error:
            count("refreshes", "invalid")
            raise InvalidGrant(f"The refresh token is invalid: {error}.") from None
        if bind is not None:
            bind(claims.sid)
        await self.tokens.ready_to_sign()
        narrowed: str | None = None
        if scope and scope.strip():
            # Before anything is written: an error answer must leave the token usable.
            granted = await session_rows.scope_of(self.db, claims.sid)
            narrowed = resolve_scope(scope, granted or "")
        now = int(time.time())
        successor = self.tokens.successor_jti(claims.jti)
        mark_for = lifetime(claims.exp - now, self.settings.refresh_reuse_grace)
        if await self.marks.mark(claims.jti, mark_for, time.time()) is not None:
            settled = await self._settled(claims, successor, now, client)
            if settled is not None:
                return settled
        row = await session_rows.rotate(
            self.db,
            sid=claims.sid,
            jti=claims.jti,
            new_jti=successor,
            now=now,
            scope=narrowed,
            client=client,
            kid=self.tokens.signing_kid(),
        )
        if row is not None:
            count("refreshes", "ok")
            return self._pair(claims, successor, row, now)  # signed by this worker's key
        settled = await self._settled(claims, successor, now, client)
        if settled is None:  # still current, yet the row did not move
            count("refreshes", "ended")
            raise InvalidGrant(ENDED)
        return settled

    async def _settled(
        self, claims: RefreshClaims, successor: str, now: int, client: ClientInfo
    ) -> TokenResponse | None:
        """The answer for a token that something else may have rotated already: its pair
        again, or a refusal; None while it is still the session's current token."""
        row = await session_rows.refresh_state(
            self.db,
            sid=claims.sid,
            jti=claims.jti,
            successor=successor,
            grace_seconds=self.settings.refresh_reuse_grace,
            ended_window=self.sessions.revocations.revoked_ttl,
        )
        state = None
        if row is not None:
            state = RefreshState(row["is_current"], row["in_grace"], row["replaced"], row["ended"])
        verdict = judge(state)
        if verdict is Verdict.CURRENT:
            return None
        count("refreshes", verdict.value)
        if verdict is Verdict.RETRY:
            assert row is not None
            await self.tokens.knows(row["kid"])  # the key that signed the pair the first time
            return self._pair(claims, successor, row, now)
        if verdict is Verdict.REPLACED:
            raise InvalidGrant(REPLACED)
        if verdict is Verdict.REUSED:
            count("reuse_detected")
            await self.sessions.end([claims.sid], reason="refresh_token_reuse", client=client)
            log.warning("refresh token reuse in session %s: session revoked", claims.sid)
            raise InvalidGrant(REUSED)
        if row is not None and row["recently_ended"]:
            # Ended moments ago, perhaps by a reuse whose Redis step failed: make sure the
            # revocation reached Redis (a no-op when it did), so the thief's tokens stop.
            await self.sessions.end([claims.sid], reason="refresh_token_reuse", client=client)
        raise InvalidGrant(ENDED)

    def _pair(
        self, claims: RefreshClaims, successor: str, row: asyncpg.Record, now: int
    ) -> TokenResponse:
        return issue_pair(
            self.tokens,
            user_id=claims.sub,
            username=row["username"],
            sid=claims.sid,
            scope=row["scope"],
            refresh_jti=successor,
            session_expires=int(row["expires_at"].timestamp()),
            issued_at=int(row["issued_at"]),
            version=int(row["version"]),
            now=now,
            kid=row["kid"],
        )
