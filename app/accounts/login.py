"""Logging in with a username and password: the limiter first, argon2id, then a session that
starts only if the user is still as verified. Every outcome is counted, and recorded in the
audit trail: a success with its session, a failure with its reason (a flood of refused
attempts as its first refusal only)."""

from __future__ import annotations

import contextlib

import asyncpg

from app import passwords
from app.accounts.responses import TokenResponse
from app.accounts.sessions import Sessions
from app.db import Database
from app.errors import InvalidGrant, RateLimited
from app.observability import count
from app.origin import ClientInfo
from app.policy import normalise_username
from app.scopes import resolve_scope
from app.stores import events
from app.stores import users as user_rows
from app.stores.ratelimit import LoginLimiter

WRONG = "The username or password is wrong."


async def count_attempt(
    limiter: LoginLimiter,
    username: str,
    client: ClientInfo,
    *,
    authenticated: bool = False,
    db: Database | None = None,
) -> None:
    """Count the attempt, and refuse it while limited: before any hashing, so that a flood of
    guesses, however parallel, costs Redis round trips and never more than the limit's hashes.
    With `db`, the first refusal in a window is recorded as a failed login."""
    attempt = await limiter.attempt(username, client.ip, authenticated=authenticated)
    if attempt.wait:
        if db is not None and attempt.first_refusal:
            name = normalise_username(username)
            user = await user_rows.by_username(db, name) if name is not None else None
            await _failed(db, client, "rate_limited", user)
        raise RateLimited(attempt.wait)


async def _failed(
    db: Database, client: ClientInfo, reason: str, user: asyncpg.Record | None
) -> None:
    """A failed login in the audit trail. For a name no account has, the name is not kept:
    people type their password into the username field."""
    await events.record(
        db,
        "login_failed",
        str(user["id"]) if user is not None else None,
        client,
        detail={"reason": reason if user is not None else "unknown_user"},
    )


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
        try:
            await count_attempt(self.limiter, username, client, db=self.db)
        except RateLimited:
            count("logins", "rate_limited")
            raise
        name = normalise_username(username)
        user = await user_rows.by_username(self.db, name) if name is not None else None
        ok, needs_rehash = await passwords.verify_password(
            user["password_hash"] if user else None, password
        )
        if user is None or not ok or user["disabled_at"] is not None:
            count("logins", "failed")
            reason = "wrong_password" if not ok else "account_disabled"
            await _failed(self.db, client, reason, user)
            raise InvalidGrant(WRONG)
        tokens = await self.sessions.start(user, resolve_scope(scope, user["scope"]), client)
        if tokens is None:  # the password changed, or the account was disabled, meanwhile
            count("logins", "failed")
            await _failed(self.db, client, "account_changed", user)
            raise InvalidGrant(WRONG)
        count("logins", "ok")
        await self.limiter.succeeded(username, client.ip, authenticated=False)
        if needs_rehash:
            with contextlib.suppress(Exception):
                new_hash = await passwords.hash_password(password)
                await user_rows.rehash(self.db, str(user["id"]), user["password_hash"], new_hash)
        return tokens
