"""What an administrator does to an account: disable it (every session and token ends at
once), enable it again, and set its scopes (from the command line)."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import asyncpg

from app.accounts.sessions import Sessions
from app.db import Database
from app.errors import NotFound
from app.policy import normalise_username
from app.scopes import check_syntax
from app.stores import users as user_rows


class AccountAdmin:
    def __init__(self, db: Database, sessions: Sessions):
        self.db = db
        self.sessions = sessions

    async def _user(self, username: str) -> asyncpg.Record:
        name = normalise_username(username)
        user = await user_rows.by_username(self.db, name) if name is not None else None
        if user is None:
            raise NotFound("No such user.")
        return user

    async def set_disabled(self, username: str, disabled: bool) -> None:
        user = await self._user(username)
        if disabled:
            await self.sessions.end_all(str(user["id"]), "account_disabled", disable=True)
        else:
            await user_rows.set_disabled(self.db, str(user["id"]), False)

    async def set_scope(self, username: str, scope: str) -> tuple[str, str]:
        """The account's scopes from now on: (before, after). Removing one cuts off every
        access token of the user issued until now (tokens carrying it among them) at once,
        as a revocation does; sessions live on, and each next refresh issues only the scopes
        the account still has."""
        check_syntax(scope)
        user = await self._user(username)
        before, after = user["scope"], " ".join(dict.fromkeys(scope.split()))
        user_id = str(user["id"])
        if set(before.split()) - set(after.split()):
            now = int(time.time())
            await user_rows.set_scope(self.db, user_id, after, datetime.fromtimestamp(now, UTC))
            await self.sessions.revocations.revoke([], user_id=user_id, not_before=now)
        else:
            await user_rows.set_scope(self.db, user_id, after, None)
        return before, after
