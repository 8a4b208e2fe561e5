"""Refresh-token rotation: a refresh token is exchanged for a new pair exactly once, and a
token used again after its successor is theft that revokes the session."""

from __future__ import annotations

import asyncio
import logging
import time

from app.accounts.responses import TokenResponse, issue_pair
from app.accounts.rotation import (
    IN_FLIGHT_POLL,
    ROTATE_TIMEOUT,
    RefreshState,
    Verdict,
    judge,
    stale_at,
)
from app.accounts.sessions import ClientInfo, Sessions
from app.config import Settings
from app.db import Database
from app.errors import InvalidGrant
from app.scopes import resolve_scope
from app.stores import sessions as session_rows
from app.stores.refresh_marks import UsedMarks
from app.tokens import TokenError, Tokens, new_id

log = logging.getLogger("app.accounts")

ENDED = "The session of this refresh token has ended."
JUST_USED = "This refresh token was just used; use the newest one."
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
        self, refresh_token: str, client: ClientInfo, scope: str | None = None
    ) -> TokenResponse:
        """Exchange a refresh token for a new pair, exactly once.

        The Redis mark (SET NX on the `jti`) turns concurrent duplicates away cheaply; the
        compare-and-set on the session row in PostgreSQL is what guarantees exactly one
        winner. If anything fails before the row moves, the mark is undone, so the token
        stays usable.
        """
        try:
            claims = self.tokens.verify_refresh(refresh_token)
        except TokenError as error:
            raise InvalidGrant(f"The refresh token is invalid: {error}.") from None
        if scope:
            # Before anything is spent: an error answer must leave the token usable.
            granted = await session_rows.scope_of(self.db, claims.sid)
            resolve_scope(scope, granted or "")
        now = int(time.time())
        marked_at = await self.marks.mark(claims.jti, claims.exp - now, time.time())
        if marked_at is not None:
            # Someone marked it first: wait for their outcome (bounded); go on only if the
            # mark turns out to be a leftover of a failed attempt.
            await self._wait_for_holder(claims.sid, claims.jti, marked_at)

        new_jti = new_id()
        try:
            async with asyncio.timeout(ROTATE_TIMEOUT):
                row = await session_rows.rotate(
                    self.db,
                    sid=claims.sid,
                    jti=claims.jti,
                    new_jti=new_jti,
                    user_agent=client.user_agent,
                    ip=client.ip,
                )
        except BaseException:
            await self._undo_mark(claims.jti)
            raise
        if row is None:
            await self._refuse(await self._verdict(claims.sid, claims.jti), claims.sid)
            raise InvalidGrant(ENDED)  # still current, yet the row did not move

        session_scope = row["scope"]
        return issue_pair(
            self.tokens,
            user_id=claims.sub,
            username=row["username"],
            sid=claims.sid,
            scope=resolve_scope(scope, session_scope) if scope else session_scope,
            refresh_jti=new_jti,
            session_expires=int(row["expires_at"].timestamp()),
            now=now,
        )

    async def _verdict(self, sid: str, jti: str) -> Verdict:
        row = await session_rows.refresh_state(
            self.db, sid=sid, jti=jti, grace_seconds=self.settings.refresh_reuse_grace
        )
        state = None if row is None else RefreshState(**dict(row))
        return judge(state)

    async def _refuse(self, verdict: Verdict, sid: str) -> None:
        """Raise for a token that is no longer current; return if it is."""
        if verdict is Verdict.ENDED:
            raise InvalidGrant(ENDED)
        if verdict is Verdict.JUST_USED:
            raise InvalidGrant(JUST_USED)
        if verdict is Verdict.REUSED:
            await self.sessions.end([sid], reason="refresh_token_reuse")
            log.warning("refresh token reuse in session %s: session revoked", sid)
            raise InvalidGrant(REUSED)

    async def _wait_for_holder(self, sid: str, jti: str, marked_at: float) -> None:
        """Another request holds the used mark: wait until it rotates the session (then this
        one is refused like any used token) or until the mark is stale (then go on)."""
        deadline = stale_at(marked_at, time.time())
        while True:
            await self._refuse(await self._verdict(sid, jti), sid)
            if time.time() >= deadline:
                log.info("refresh token %s: stale used mark, taking it over", jti)
                return
            await asyncio.sleep(IN_FLIGHT_POLL)

    async def _undo_mark(self, jti: str) -> None:
        try:
            await self.marks.unmark(jti)
        except Exception:  # noqa: BLE001 - the stale-mark rule recovers the token later
            log.warning("could not undo the used mark of refresh token %s", jti)
