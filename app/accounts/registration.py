"""Creating accounts, from the register route and from the command line alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from app import passwords
from app.db import Queryable
from app.errors import RateLimited
from app.policy import check_new_password, check_username
from app.scopes import DEFAULT_SCOPE
from app.stores import users as user_rows
from app.stores.ratelimit import RegistrationLimiter


@dataclass(frozen=True, slots=True)
class Account:
    id: str
    username: str
    scope: str
    created_at: datetime


class Registration:
    def __init__(self, db: Queryable, limiter: RegistrationLimiter | None = None):
        self.db = db
        self.limiter = limiter

    async def register(self, username: str, password: str, address: str | None) -> Account:
        """POST /auth/register: limited per client address (each costs an argon2 hash)."""
        if self.limiter is not None:
            wait = await self.limiter.attempt(address)
            if wait:
                raise RateLimited(wait, "Too many registrations from this address; try later.")
        return await self.create(username, password)

    async def create(self, username: str, password: str, scope: str = DEFAULT_SCOPE) -> Account:
        """The new account; `PolicyViolation` or `UsernameExists` when it can't be made."""
        check_username(username)
        check_new_password(username, password)
        password_hash = await passwords.hash_password(password)
        row = await user_rows.create(self.db, username, password_hash, scope)
        return Account(str(row["id"]), row["username"], row["scope"], row["created_at"])
