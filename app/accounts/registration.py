"""Creating accounts, from the register route and from the command line alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app import passwords
from app.db import Queryable
from app.policy import check_new_password, check_username
from app.scopes import DEFAULT_SCOPE
from app.stores import users as user_rows


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    username: str
    scope: str
    created_at: datetime


class Registration:
    def __init__(self, db: Queryable):
        self.db = db

    async def register(self, username: str, password: str, scope: str = DEFAULT_SCOPE) -> Account:
        """The new account; `PolicyViolation` or `UsernameExists` when it can't be made."""
        check_username(username)
        check_new_password(username, password)
        password_hash = await passwords.hash_password(password)
        row = await user_rows.create(self.db, username, password_hash, scope)
        return Account(str(row["id"]), row["username"], row["scope"], row["created_at"])
