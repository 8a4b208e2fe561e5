"""Logging in with a username and password: the limiter first, argon2id, then a session that
starts only if the user is still as verified."""

from __future__ import annotations

import contextlib

from app import passwords
from app.accounts.responses import TokenResponse
from app.accounts.sessions import ClientInfo, Sessions
from app.db import Database
from app.errors import InvalidGrant, RateLimited
from app.policy import normalise_username
from app.scopes import resolve_scope
from app.stores import users as user_rows
from app.stores.ratelimit import LoginLimiter

WRONG = "The username or password is wrong."


async def count_attempt(
    limiter: LoginLimiter, username: str, client: ClientInfo, *, authenticated: bool = False
) -> None:
    """Count the attempt, and refuse it while limited: before any hashing, so that a flood of
    guesses, however parallel, costs Redis round trips and never more than the limit's hashes."""
    wait = await limiter.attempt(username, client.ip, authenticated=authenticated)
    if wait:
        raise RateLimited(wait)


class Login:
    def __init__(self, db: Database, limiter: LoginLimiter, sessions: Sessions):
        self.db = db
        self.limiter = limiter
        self.sessions = sessions

    async def login(
        self, username: str, password: str, scope: str | None, client: ClientInfo
    ) -> TokenResponse:
        """Unknown user, wrong password and disabled account answer alike, in the same time;
        a name no account can have is an unknown user."""
        await count_attempt(self.limiter, username, client)
        name = normalise_username(username)
        user = await user_rows.by_username(self.db, name) if name is not None else None
        ok, needs_rehash = await passwords.verify_password(
            user["password_hash"] if user else None, password
        )
        if user is None or not ok or user["disabled_at"] is not None:
            raise InvalidGrant(WRONG)
        tokens = await self.sessions.start(user, resolve_scope(scope, user["scope"]), client)
        if tokens is None:  # the password changed, or the account was disabled, meanwhile
            raise InvalidGrant(WRONG)
        await self.limiter.succeeded(username, client.ip, authenticated=False)
        if needs_rehash:
            with contextlib.suppress(Exception):
                new_hash = await passwords.hash_password(password)
                await user_rows.rehash(self.db, str(user["id"]), user["password_hash"], new_hash)
        return tokens
