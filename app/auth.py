"""Login, refresh-token rotation and session ending: the flows between tokens and stores."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from app import passwords
from app.config import Settings
from app.db import Database
from app.errors import (
    InvalidGrant,
    InvalidScope,
    InvalidToken,
    NotFound,
    RateLimited,
    WrongPassword,
)
from app.stores import sessions, users
from app.stores.ratelimit import LoginLimiter
from app.stores.revocation import RevocationStore
from app.tokens import AccessClaims, RefreshClaims, TokenError, Tokens, new_id

log = logging.getLogger("app.auth")

# The PostgreSQL step of a refresh is cut off after ROTATE_TIMEOUT. So a used-token mark
# older than STALE_MARK_SECONDS whose session still names the token as current was left by
# an attempt that failed half-way (a Redis write that timed out and landed later, or an undo
# that failed): the token is still good.
ROTATE_TIMEOUT = 3.0
STALE_MARK_SECONDS = ROTATE_TIMEOUT + 2.0
IN_FLIGHT_POLL = 0.05


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
        self,
        settings: Settings,
        tokens: Tokens,
        db: Database,
        revocation: RevocationStore,
        limiter: LoginLimiter,
    ):
        self.settings = settings
        self.tokens = tokens
        self.db = db
        self.revocation = revocation
        self.limiter = limiter

    # -- login -------------------------------------------------------------------

    async def login(
        self, username: str, password: str, scope: str | None, client: Client
    ) -> dict[str, Any]:
        """Unknown user, wrong password and disabled account answer alike, in the same time."""
        had_failures = await self._check_rate(username, client)
        user = await users.by_username(self.db, username)
        ok, needs_rehash = await passwords.verify_password(
            user["password_hash"] if user else None, password
        )
        if user is None or not ok or user["disabled_at"] is not None:
            await self.limiter.failed(username, client.ip)
            raise InvalidGrant("The username or password is wrong.")
        if had_failures:  # one round trip saved on the usual login
            await self.limiter.succeeded(username)
        granted = resolve_scope(scope, user["scope"])
        if needs_rehash:
            with contextlib.suppress(Exception):
                new_hash = await passwords.hash_password(password)
                await users.set_password_hash(self.db, user["id"], new_hash)
        return await self.start_session(str(user["id"]), user["username"], granted, client)

    async def _check_rate(self, username: str, client: Client) -> bool:
        """Refuse while limited; whether the account has failed logins on record."""
        # Before any hashing: a flood of guesses costs Redis round trips, not CPU.
        wait, had_failures = await self.limiter.retry_after(username, client.ip)
        if wait:
            raise RateLimited(wait)
        return had_failures

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
        if scope:
            # Before anything is spent: an error answer must leave the token usable.
            granted = await sessions.scope_of(self.db, claims.sid)
            resolve_scope(scope, granted or "")
        now = int(time.time())
        marked_at = await self.revocation.mark_used(claims.jti, claims.exp - now, time.time())
        if marked_at is not None:
            # Someone marked it first: wait for their outcome (bounded); go on only if the
            # mark turns out to be a leftover of a failed attempt.
            await self._wait_for_holder(claims.sid, claims.jti, marked_at)

        new_jti = new_id()
        try:
            async with asyncio.timeout(ROTATE_TIMEOUT):
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
            state = await self._refresh_state(claims.sid, claims.jti)
            self._judge(state, claims.sid)
            if state["is_current"]:  # the row did not move although the token is current
                raise InvalidGrant("The session of this refresh token has ended.")
            await self._reuse(claims.sid)

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

    async def _refresh_state(self, sid: str, jti: str) -> Any:
        return await sessions.refresh_state(
            self.db, sid=sid, jti=jti, grace_seconds=self.settings.refresh_reuse_grace
        )

    def _judge(self, state: Any, sid: str) -> None:
        """Raise for a refresh token that is not (or no longer) the session's current one,
        unless it is reuse, which the caller handles; return if it is still current."""
        if state is None or state["ended"]:
            raise InvalidGrant("The session of this refresh token has ended.")
        if state["is_current"]:
            return
        if state["in_grace"]:
            raise InvalidGrant("This refresh token was just used; use the newest one.")

    async def _reuse(self, sid: str) -> NoReturn:
        await self.end_sessions([sid], reason="refresh_token_reuse")
        log.warning("refresh token reuse in session %s: session revoked", sid)
        raise InvalidGrant("This refresh token was already used; the session has been revoked.")

    async def _wait_for_holder(self, sid: str, jti: str, marked_at: float) -> None:
        """Another request holds the used mark: wait until it rotates the session (then this
        one is refused like any used token) or until the mark is stale (then go on)."""
        deadline = min(marked_at, time.time()) + STALE_MARK_SECONDS
        while True:
            state = await self._refresh_state(sid, jti)
            self._judge(state, sid)
            if not state["is_current"]:
                await self._reuse(sid)
            if time.time() >= deadline:
                log.info("refresh token %s: stale used mark, taking it over", jti)
                return
            await asyncio.sleep(IN_FLIGHT_POLL)

    # -- ending sessions ----------------------------------------------------------
    #
    # PostgreSQL first (the refresh tokens die and the record is kept), then Redis (the
    # access tokens die). If Redis fails the caller gets a 503 while its access token still
    # works, so it can simply retry: the Redis marks are derived from what PostgreSQL
    # recorded, and writing them again is harmless.

    async def end_sessions(self, sids: list[str], *, reason: str) -> None:
        for sid in sids:
            await sessions.revoke(self.db, sid, reason)
        await self.revocation.revoke(sids)

    async def end_own_session(self, user_id: str, sid: str) -> None:
        """DELETE /auth/sessions/{id}: another user's session is as unknown as a missing one."""
        if not await sessions.is_active_for(self.db, sid, user_id):
            raise NotFound("No such session.")
        await self.end_sessions([sid], reason="ended_by_user")

    async def end_all_sessions(
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
                await users.set_password_hash(tx, user_id, password_hash)
            if disable:
                await users.set_disabled(tx, user_id, True)
            await users.set_tokens_valid_after(tx, user_id, datetime.fromtimestamp(now, UTC))
            await sessions.revoke_all(tx, user_id, reason)
            # Every session ended within an access-token lifetime: this call's, and those of
            # an earlier attempt whose Redis step failed.
            sids = await sessions.recently_revoked(tx, user_id, self.revocation.revoked_ttl)
        await self.revocation.revoke(sids, user_id=user_id, not_before=now)

    async def change_password(
        self, claims: AccessClaims, current: str, new: str, client: Client
    ) -> dict[str, Any]:
        user = await users.by_id(self.db, claims.sub)
        if user is None or user["disabled_at"] is not None:
            raise InvalidToken("The account no longer exists or is disabled.")
        await self._check_rate(user["username"], client)
        ok, _ = await passwords.verify_password(user["password_hash"], current)
        if ok:
            new_hash: str | None = await passwords.hash_password(new)
        elif (await passwords.verify_password(user["password_hash"], new))[0]:
            # A retry of a change that was stored but whose revocation step failed (503):
            # the caller knows the password now in force; finish the job.
            new_hash = None
        else:
            await self.limiter.failed(user["username"], client.ip)
            raise WrongPassword()
        await self.end_all_sessions(claims.sub, "password_changed", password_hash=new_hash)
        return await self.start_session(claims.sub, user["username"], claims.scope, client)

    async def reseed_revocations(self) -> None:
        """Rebuild the Redis revocation state from what PostgreSQL recorded (Redis lost it)."""
        ttl = self.revocation.revoked_ttl
        ended = await sessions.revoked_within(self.db, ttl)
        cut_off = await users.not_before_within(self.db, ttl)
        await self.revocation.restore(ended, cut_off)

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
            await self.end_sessions([sid], reason="revoked")
            return

    async def set_disabled(self, username: str, disabled: bool) -> None:
        user = await users.by_username(self.db, username)
        if user is None:
            raise NotFound("No such user.")
        if disabled:
            await self.end_all_sessions(str(user["id"]), "account_disabled", disable=True)
        else:
            await users.set_disabled(self.db, str(user["id"]), False)

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
