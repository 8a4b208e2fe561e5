"""Login, refresh-token rotation and session ending: the flows between tokens and stores."""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from app import passwords
from app.config import Settings
from app.db import Database
from app.errors import InvalidGrant, InvalidScope
from app.stores import sessions, users
from app.stores.revocation import RevocationStore
from app.tokens import TokenError, Tokens, new_id

log = logging.getLogger("app.auth")

# A used-token mark older than this whose session still names the token as current was left
# by a refresh that failed half-way (its undo failed too): the token is still good.
STALE_MARK_SECONDS = 15.0


@dataclass(frozen=True, slots=True)
class Client:
    """Where a login or refresh came from, shown in the session list."""

    user_agent: str | None = None
    ip: str | None = None


def resolve_scope(requested: str | None, granted: str) -> str:
    """The scope to grant: all of `granted` by default, or a subset of it, never more."""
    allowed = granted.split()
    if requested is None or not requested.strip():
        return " ".join(allowed)
    wanted = requested.split()
    if any(scope not in allowed for scope in wanted):
        raise InvalidScope("The requested scope exceeds what this account may have.")
    return " ".join(scope for scope in allowed if scope in wanted)


class AuthService:
    def __init__(
        self, settings: Settings, tokens: Tokens, db: Database, revocation: RevocationStore
    ):
        self.settings = settings
        self.tokens = tokens
        self.db = db
        self.revocation = revocation

    # -- login -------------------------------------------------------------------

    async def login(
        self, username: str, password: str, scope: str | None, client: Client
    ) -> dict[str, Any]:
        user = await users.by_username(self.db, username)
        ok, needs_rehash = await passwords.verify_password(
            user["password_hash"] if user else None, password
        )
        if user is None or not ok or user["disabled_at"] is not None:
            raise InvalidGrant("The username or password is wrong.")
        granted = resolve_scope(scope, user["scope"])
        if needs_rehash:
            with contextlib.suppress(Exception):
                new_hash = await passwords.hash_password(password)
                await users.set_password_hash(self.db, user["id"], new_hash)
        return await self.start_session(str(user["id"]), user["username"], granted, client)

    async def start_session(
        self, user_id: str, username: str, scope: str, client: Client
    ) -> dict[str, Any]:
        now = int(time.time())
        sid, jti = new_id(), new_id()
        expires = now + self.settings.session_max_age
        await sessions.create(
            self.db,
            sid=sid,
            user_id=user_id,
            scope=scope,
            jti=jti,
            expires_at=datetime.fromtimestamp(expires, UTC),
            user_agent=client.user_agent,
            ip=client.ip,
        )
        return self._token_response(user_id, username, sid, scope, jti, expires, now)

    # -- refresh -----------------------------------------------------------------

    async def refresh(
        self, refresh_token: str, client: Client, scope: str | None = None
    ) -> dict[str, Any]:
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
        now = int(time.time())
        marked_at = await self.revocation.mark_used(claims.jti, claims.exp - now)
        if marked_at is not None and time.time() - marked_at < STALE_MARK_SECONDS:
            await self._refused(claims.sid, claims.jti)

        new_jti = new_id()
        try:
            row = await sessions.rotate(
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
            await self._refused(claims.sid, claims.jti)
            raise AssertionError("unreachable")  # pragma: no cover

        session_scope = row["scope"]
        access_scope = resolve_scope(scope, session_scope) if scope else session_scope
        expires = int(row["expires_at"].timestamp())
        return self._token_response(
            claims.sub, row["username"], claims.sid, access_scope, new_jti, expires, now
        )

    async def _undo_mark(self, jti: str) -> None:
        try:
            await self.revocation.unmark_used(jti)
        except Exception:  # noqa: BLE001 - the stale-mark rule recovers the token later
            log.warning("could not undo the used mark of refresh token %s", jti)

    async def _refused(self, sid: str, jti: str) -> None:
        """Answer a refresh token that did not rotate; reuse outside the grace ends the session."""
        state = await sessions.refresh_state(
            self.db, sid=sid, jti=jti, grace_seconds=self.settings.refresh_reuse_grace
        )
        if state is None or state["ended"]:
            raise InvalidGrant("The session of this refresh token has ended.")
        if state["is_current"]:
            # Marked but not rotated yet: another request with this token is in flight.
            raise InvalidGrant("This refresh token is being used by another request.")
        if state["in_grace"]:
            raise InvalidGrant("This refresh token was just used; use the newest one.")
        await self.end_sessions([sid], reason="refresh_token_reuse")
        log.warning("refresh token reuse in session %s: session revoked", sid)
        raise InvalidGrant("This refresh token was already used; the session has been revoked.")

    # -- ending sessions ----------------------------------------------------------

    async def end_sessions(
        self, sids: list[str], *, reason: str, user_id: str | None = None
    ) -> list[str]:
        """Refuse the sessions' access tokens (Redis) first, then their refresh tokens (SQL)."""
        await self.revocation.revoke_sessions(sids)
        ended = []
        for sid in sids:
            if await sessions.revoke(self.db, sid, reason, user_id):
                ended.append(sid)
        return ended

    # -- responses ---------------------------------------------------------------

    def _token_response(
        self,
        user_id: str,
        username: str,
        sid: str,
        scope: str,
        refresh_jti: str,
        session_expires: int,
        now: int,
    ) -> dict[str, Any]:
        access = self.tokens.issue_access(
            sub=user_id, sid=sid, scope=scope, username=username, now=now
        )
        refresh = self.tokens.issue_refresh(
            sub=user_id, sid=sid, jti=refresh_jti, session_expires=session_expires, now=now
        )
        if refresh.exp <= now:
            raise InvalidGrant("The session has reached its maximum age; log in again.")
        return {
            "access_token": access.token,
            "token_type": "Bearer",
            "expires_in": self.tokens.access_ttl,
            "refresh_token": refresh.token,
            "refresh_expires_in": refresh.exp - now,
            "scope": scope,
            "account_id": user_id,
            "session_id": sid,
        }
