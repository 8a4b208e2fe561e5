"""What an administrator does to an account: disable it (every session and token ends at
once) and enable it again."""

from __future__ import annotations

from app.accounts.sessions import Sessions
from app.db import Database
from app.errors import NotFound
from app.policy import is_username
from app.stores import users as user_rows


class AccountAdmin:
    def __init__(self, db: Database, sessions: Sessions):
        self.db = db
        self.sessions = sessions

    async def set_disabled(self, username: str, disabled: bool) -> None:
        user = await user_rows.by_username(self.db, username) if is_username(username) else None
        if user is None:
            raise NotFound("No such user.")
        if disabled:
            await self.sessions.end_all(str(user["id"]), "account_disabled", disable=True)
        else:
            await user_rows.set_disabled(self.db, str(user["id"]), False)
