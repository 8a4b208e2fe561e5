"""What an administrator does to an account: disable it (every session and token ends at
once), enable it again, and set its scopes (from the command line)."""

from __future__ import annotations

import asyncpg

from app.accounts.sessions import NO_CLIENT, Sessions
from app.db import Database
from app.errors import NotFound
from app.origin import ClientInfo
from app.policy import normalise_username
from app.scopes import check_syntax
from app.stores import events
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

    async def user_id(self, username: str) -> str:
        """The id of the account named `username`; `NotFound` when there is none."""
        return str((await self._user(username))["id"])

    async def set_disabled(
        self,
        username: str,
        disabled: bool,
        *,
        actor_id: str | None = None,
        client: ClientInfo = NO_CLIENT,
    ) -> None:
        """Disable or enable the account, recorded with the administrator who did it."""
        user = await self._user(username)
        user_id = str(user["id"])
        if disabled:
            await self.sessions.end_all(
                user_id, "account_disabled", disable=True, actor_id=actor_id, client=client
            )
            return
        async with self.db.transaction() as tx:
            await user_rows.set_disabled(tx, user_id, False)
            await events.record(tx, "account_enabled", user_id, client, actor_id=actor_id)

    async def set_scope(
        self,
        username: str,
        scope: str,
        *,
        actor_id: str | None = None,
        client: ClientInfo = NO_CLIENT,
    ) -> tuple[str, str]:
        """The account's scopes from now on: (before, after). Removing one cuts off every
        access token of the user issued until now (tokens carrying it among them) at once,
        as a revocation does; sessions live on, and each next refresh issues only the scopes
        the account still has."""
        check_syntax(scope)
        user_id = str((await self._user(username))["id"])
        after = " ".join(dict.fromkeys(scope.split()))
        revocations = self.sessions.revocations
        async with self.db.transaction() as tx:
            # Locked: a refresh or login racing this either came first (and is cut off) or
            # waits, and then sees the new scopes.
            locked = await user_rows.lock(tx, user_id, revocations.revoked_ttl)
            before = locked["scope"]
            removed = bool(set(before.split()) - set(after.split()))
            version = await user_rows.set_scope(tx, user_id, after, cut=removed)
            if before != after:
                await events.record(
                    tx,
                    "scope_changed",
                    user_id,
                    client,
                    actor_id=actor_id,
                    detail={"before": before, "after": after},
                )
        if removed or locked["recently_cut"]:
            # also when nothing is removed now: an earlier run whose Redis step failed
            await revocations.revoke([], user_id=user_id, version=version)
        return before, after
