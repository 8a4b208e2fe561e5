"""Accounts and their sessions, one flow per module: login, refresh (rotation), sessions,
password change, administration, registration.

`setup_accounts(app)` builds the flows per worker on its pools and revocation state, and
lets handlers ask for any of them by type (`login: Login`) through sanic-ext's injection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from sanic import Request, Sanic

from app import passwords
from app.accounts.admin import AccountAdmin
from app.accounts.login import Login
from app.accounts.password_change import PasswordChange
from app.accounts.refresh import Refresh
from app.accounts.registration import Registration
from app.accounts.sessions import Sessions
from app.stores.ratelimit import LoginLimiter, RegistrationLimiter
from app.stores.refresh_marks import UsedMarks


@dataclass(frozen=True, slots=True)
class Accounts:
    """The flows of one worker."""

    login: Login
    refresh: Refresh
    sessions: Sessions
    password_change: PasswordChange
    admin: AccountAdmin
    registration: Registration


async def open_accounts(app: Sanic[Any, Any]) -> None:
    ctx, settings = app.ctx, app.ctx.settings
    prefix = settings.redis_key_prefix
    limiter = LoginLimiter(ctx.redis, prefix=prefix)
    sessions = Sessions(settings, ctx.tokens, ctx.db, ctx.revocations)
    ctx.accounts = Accounts(
        login=Login(ctx.db, limiter, sessions),
        refresh=Refresh(
            settings, ctx.tokens, ctx.db, UsedMarks(ctx.redis, prefix=prefix), sessions
        ),
        sessions=sessions,
        password_change=PasswordChange(ctx.db, limiter, sessions),
        admin=AccountAdmin(ctx.db, sessions),
        registration=Registration(ctx.db, RegistrationLimiter(ctx.redis, prefix=prefix)),
    )
    await passwords.warm_up()


def _provider(name: str) -> Callable[[Request], Any]:
    def provide(request: Request) -> Any:
        return getattr(request.app.ctx.accounts, name)

    return provide


def setup_accounts(app: Sanic[Any, Any]) -> None:
    """Per worker, after the pools and revocation: `app.ctx.accounts`; each flow injectable."""
    app.before_server_start(open_accounts)
    for name, kind in get_type_hints(Accounts).items():
        app.ext.add_dependency(kind, _provider(name))
