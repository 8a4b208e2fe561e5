"""Changing the password: every earlier session and token of the user ends, a new one starts."""

from __future__ import annotations

from app import passwords
from app.accounts.login import check_rate
from app.accounts.responses import TokenResponse
from app.accounts.sessions import ClientInfo, Sessions
from app.db import Database
from app.errors import InvalidToken, WrongPassword
from app.policy import check_new_password
from app.stores import users as user_rows
from app.stores.ratelimit import LoginLimiter
from app.tokens import AccessClaims


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
            raise InvalidToken("The account no longer exists or is disabled.")
        await check_rate(self.limiter, user["username"], client)
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
        await self.sessions.end_all(claims.sub, "password_changed", password_hash=new_hash)
        return await self.sessions.start(claims.sub, user["username"], claims.scope, client)
