"""Changing the password: every earlier session and token of the user ends, a new one starts,
atomically with the change."""

from __future__ import annotations

from app import passwords
from app.accounts.login import count_attempt
from app.accounts.responses import TokenResponse
from app.accounts.sessions import Sessions
from app.db import Database
from app.errors import InvalidToken, WrongPassword
from app.origin import ClientInfo
from app.policy import check_new_password
from app.stores import events
from app.stores import users as user_rows
from app.stores.ratelimit import LoginLimiter
from app.tokens import AccessClaims

GONE = "The account no longer exists or is disabled."


class PasswordChange:
    def __init__(self, db: Database, limiter: LoginLimiter, sessions: Sessions):
        self.db = db
        self.limiter = limiter
        self.sessions = sessions

    async def change(
        self, claims: AccessClaims, current: str, new: str, client: ClientInfo
    ) -> TokenResponse:
        check_new_password(claims.username, new)
        user = await user_rows.by_id(self.db, claims.sub)
        if user is None or user["disabled_at"] is not None:
            raise InvalidToken(GONE)
        # Only guesses from the caller's own address count: an attacker elsewhere can't block
        # the owner's password change, a thief of the access token gets ten tries.
        await count_attempt(self.limiter, user["username"], client, authenticated=True)
        ok, _ = await passwords.verify_password(user["password_hash"], current)
        if not ok:
            await events.record(
                self.db,
                "password_change_failed",
                claims.sub,
                client,
                session_id=claims.sid,
                detail={"reason": "wrong_password"},
            )
            raise WrongPassword()
        new_hash = await passwords.hash_password(new)
        tokens = await self.sessions.restart(user, claims.scope, client, new_hash=new_hash)
        if tokens is None:  # disabled, or the password changed again, meanwhile
            now = await user_rows.by_id(self.db, claims.sub)
            if now is None or now["disabled_at"] is not None:
                raise InvalidToken(GONE)
            raise WrongPassword()
        await self.limiter.succeeded(user["username"], client.ip, authenticated=True)
        return tokens
