"""Logging in with a username and password: the limiter first, argon2id, then a session."""

from __future__ import annotations

import contextlib

from app import passwords
from app.accounts.responses import TokenResponse
from app.accounts.sessions import ClientInfo, Sessions
from app.db import Database
from app.errors import InvalidGrant, RateLimited
from app.scopes import resolve_scope
from app.stores import users as user_rows
from app.stores.ratelimit import LoginLimiter


async def check_rate(limiter: LoginLimiter, username: str, client: ClientInfo) -> bool:
    """Refuse while limited; whether the account has failed logins on record."""
    # Before any hashing: a flood of guesses costs Redis round trips, not CPU.
    wait, had_failures = await limiter.retry_after(username, client.ip)
    if wait:
        raise RateLimited(wait)
    return had_failures


class Login:
    def __init__(self, db: Database, limiter: LoginLimiter, sessions: Sessions):
        self.db = db
        self.limiter = limiter
        self.sessions = sessions

    async def login(
        self, username: str, password: str, scope: str | None, client: ClientInfo
    ) -> TokenResponse:
        """Unknown user, wrong password and disabled account answer alike, in the same time."""
        had_failures = await check_rate(self.limiter, username, client)
        user = await user_rows.by_username(self.db, username)
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
                await user_rows.set_password_hash(self.db, user["id"], new_hash)
        return await self.sessions.start(str(user["id"]), user["username"], granted, client)
