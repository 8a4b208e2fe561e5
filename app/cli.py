"""Command line: migrate, create-db, create-user NAME [--admin] --password-stdin,
set-scope NAME "SCOPES", purge."""

from __future__ import annotations

import argparse
import asyncio
import sys
from urllib.parse import urlsplit

import asyncpg
import redis.exceptions

from app.accounts.admin import AccountAdmin
from app.accounts.registration import Registration
from app.accounts.sessions import Sessions
from app.config import ConfigError, Settings
from app.db import Database
from app.errors import ApiError, DomainError
from app.maintenance import Purged, purge_now
from app.migrate import create_database, migrate
from app.revocation import standalone_revocations
from app.scopes import ADMIN_SCOPE, DEFAULT_SCOPE
from app.tokens import Tokens


async def create_user(dsn: str, username: str, password: str, admin: bool) -> str:
    scope = DEFAULT_SCOPE + (" " + ADMIN_SCOPE if admin else "")
    db = await Database.open(dsn, max_size=1)
    try:
        account = await Registration(db).create(username, password, scope)
    except DomainError as error:  # the policy, or a taken name: its message is the answer
        raise SystemExit(f"error: {error}") from None
    finally:
        await db.close()
    return account.id


async def set_scope(settings: Settings, username: str, scope: str) -> tuple[str, str]:
    db = await Database.open(settings.database_url, max_size=2)
    try:
        async with standalone_revocations(settings, db) as revocations:
            sessions = Sessions(settings, Tokens(settings), db, revocations)
            try:
                return await AccountAdmin(db, sessions).set_scope(username, scope)
            except ApiError as error:  # no such user, a malformed scope
                raise SystemExit(f"error: {error.error_description}") from None
    finally:
        await db.close()


async def purge(settings: Settings) -> Purged | None:
    db = await Database.open(settings.database_url, max_size=1)
    try:
        return await purge_now(db, settings)
    finally:
        await db.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.cli")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("migrate", help="apply migrations/ to DATABASE_URL")
    commands.add_parser("create-db", help="create the DATABASE_URL database if it is missing")
    create = commands.add_parser("create-user", help="create a user")
    create.add_argument("username")
    create.add_argument("--admin", action="store_true", help="grant the admin scope")
    create.add_argument(
        "--password-stdin",
        action="store_true",
        required=True,
        help="read the password from the first line of standard input",
    )
    scope = commands.add_parser(
        "set-scope",
        help="set a user's scopes; removing one stops every live token carrying it at once",
    )
    scope.add_argument("username")
    scope.add_argument("scopes", help='space-separated, e.g. "notes:read notes:write"')
    commands.add_parser(
        "purge",
        help="delete sessions no token can need any more and events past AUDIT_RETENTION",
    )
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    dsn = settings.database_url

    try:
        if args.command == "migrate":
            applied = asyncio.run(migrate(dsn))
            print(f"applied {', '.join(applied)}" if applied else "migrations: up to date")
        elif args.command == "create-db":
            created = asyncio.run(create_database(dsn))
            print("database created" if created else "database exists")
        elif args.command == "purge":
            purged = asyncio.run(purge(settings))
            if purged is None:
                print("purge: another purge is running; nothing done")
            else:
                print(f"purge: {purged.sessions} sessions and {purged.events} events deleted")
        elif args.command == "set-scope":
            before, after = asyncio.run(set_scope(settings, args.username, args.scopes))
            print(f"scope of {args.username}: {before!r} -> {after!r}")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            user_id = asyncio.run(create_user(dsn, args.username, password, args.admin))
            print(f"created user {args.username} ({user_id})")
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        print(f"error: PostgreSQL at {urlsplit(dsn).netloc or dsn}: {error}", file=sys.stderr)
        return 1
    except ConfigError as error:  # the install itself is broken (no migrations)
        print(f"error: {error}", file=sys.stderr)
        return 2
    except redis.exceptions.RedisError as error:
        print(f"error: Redis at {urlsplit(settings.redis_url).netloc}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
