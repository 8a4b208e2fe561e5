"""Command line: migrate, create-db, create-user NAME [--admin] [--scope S] --password-stdin,
set-scope NAME "SCOPES", revoke-all, purge, keys list, keys rotate [--force], keys revoke KID."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

import asyncpg
import redis.exceptions

from app import keys, keyset
from app.accounts.admin import AccountAdmin
from app.accounts.registration import Registration
from app.accounts.sessions import Sessions
from app.config import ConfigError, Settings
from app.db import Database
from app.errors import ApiError, DomainError
from app.key_lifecycle import (
    KeyIsCurrent,
    NotPublishedLongEnough,
    Rotated,
    revoke_key,
    rotate_now,
)
from app.maintenance import Purged, purge_now
from app.migrate import create_database, migrate
from app.redis import describe
from app.revocation import standalone_revocations
from app.scopes import ADMIN_SCOPE, DEFAULT_SCOPE, check_syntax
from app.stores import cut_offs
from app.stores import keys as key_rows
from app.tokens import Tokens


def user_scope(admin: bool, scope: str | None) -> str:
    """A new user's scopes: `scope` when given (a service account's "introspect", say), else
    the default ones; `admin` adds the admin scope either way."""
    chosen = (scope if scope is not None else DEFAULT_SCOPE).split()
    if admin and ADMIN_SCOPE not in chosen:
        chosen.append(ADMIN_SCOPE)
    return " ".join(chosen)


async def create_user(dsn: str, username: str, password: str, scope: str) -> str:
    try:
        check_syntax(scope)
    except ApiError as error:
        raise SystemExit(f"error: {error.error_description}") from None
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


async def list_keys(settings: Settings) -> list[str]:
    db = await Database.open(settings.database_url, max_size=1)
    try:
        rows = await key_rows.load(db)
    finally:
        await db.close()
    horizon = keyset.retire_horizon(settings)
    lines = []
    for row in sorted(rows, key=lambda row: (keys.STATE_ORDER[row.state], -row.created_at)):
        since = row.retired_at or row.activated_at or row.created_at
        until = f", accepted until {_when(row.retired_at + horizon)}" if row.retired_at else ""
        kid = row.kid or "(legacy: JWT_SECRET, tokens without kid)"
        lines.append(f"{row.state.value:8} {row.alg:6} {kid}  since {_when(since)}{until}")
    return lines


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


async def rotate_keys(settings: Settings, force: bool) -> Rotated:
    db = await Database.open(settings.database_url, max_size=1)
    try:
        return await rotate_now(db, settings, force=force)
    except NotPublishedLongEnough as error:
        raise SystemExit(
            f"error: the next key has been published for less than JWKS_MAX_AGE"
            f" ({settings.jwks_max_age} s): a verifier that cached the JWKS before it appeared"
            f" may not know it for another {error.wait:.0f} s. Try again then, or rotate with"
            " --force (verifiers that fetch the JWKS again on an unknown kid, like"
            " app.verifier and PyJWKClient, are not affected)"
        ) from None
    finally:
        await db.close()


async def revoke_signing_key(settings: Settings, kid: str) -> str:
    db = await Database.open(settings.database_url, max_size=1)
    try:
        state = await revoke_key(db, settings, kid)
    except KeyIsCurrent:
        raise SystemExit(
            f"error: {kid} is the key that signs: rotate first (keys rotate --force), then revoke"
        ) from None
    finally:
        await db.close()
    if state is None:
        raise SystemExit(f"error: no signing key {kid!r} (see keys list)")
    return state.value


async def revoke_all(settings: Settings) -> tuple[int, int]:
    """Incident response: every session of every user ends, and every access token issued
    until now is refused on every worker of every host (the global cut-off)."""
    db = await Database.open(settings.database_url, max_size=2)
    try:
        async with db.transaction() as tx:
            not_before, ended = await cut_offs.revoke_all(tx, settings.clock_skew)
        async with standalone_revocations(settings, db) as revocations:
            await revocations.revoke([], not_before=not_before)
    finally:
        await db.close()
    return not_before, ended


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
        "--scope",
        help='the user\'s scopes instead of the default ones, e.g. "introspect" for a service',
    )
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
        "revoke-all",
        help="incident response: end every session of every user, refuse every token issued",
    )
    commands.add_parser(
        "purge",
        help="delete sessions no token can need any more and events past AUDIT_RETENTION",
    )
    key_commands = commands.add_parser("keys", help="the signing keys").add_subparsers(
        dest="keys_command", required=True
    )
    key_commands.add_parser("list", help="every key with its state: current, next, retired")
    rotate = key_commands.add_parser(
        "rotate", help="the next key signs from now on; a new next key is published"
    )
    rotate.add_argument(
        "--force",
        action="store_true",
        help="even if the next key was published less than JWKS_MAX_AGE ago",
    )
    revoke = key_commands.add_parser(
        "revoke", help="delete a key that does not sign: every token it signed stops working"
    )
    revoke.add_argument("kid")
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
        elif args.command == "keys" and args.keys_command == "list":
            print("\n".join(asyncio.run(list_keys(settings))))
        elif args.command == "keys" and args.keys_command == "revoke":
            state = asyncio.run(revoke_signing_key(settings, args.kid))
            print(
                f"keys: {args.kid} ({state}) revoked: every token it signed is refused on every"
                f" host within {keyset.RELOAD_EVERY:.0f} s"
            )
        elif args.command == "keys":
            rotated = asyncio.run(rotate_keys(settings, args.force))
            print(
                f"keys: {rotated.current} signs now (every host within"
                f" {keyset.RELOAD_EVERY:.0f} s), {rotated.retired} retired,"
                f" {rotated.next} is the next key"
            )
        elif args.command == "revoke-all":
            not_before, ended = asyncio.run(revoke_all(settings))
            when = datetime.fromtimestamp(not_before, UTC).strftime("%H:%M:%S UTC")
            print(
                f"revoke-all: {ended} sessions ended; every token issued before {when} is"
                " refused on every host"
            )
        elif args.command == "set-scope":
            before, after = asyncio.run(set_scope(settings, args.username, args.scopes))
            print(f"scope of {args.username}: {before!r} -> {after!r}")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            granted = user_scope(args.admin, args.scope)
            user_id = asyncio.run(create_user(dsn, args.username, password, granted))
            print(f"created user {args.username} ({user_id})")
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        print(f"error: PostgreSQL at {urlsplit(dsn).netloc or dsn}: {error}", file=sys.stderr)
        return 1
    except (ConfigError, keys.KeyDecryptionError) as error:  # a broken install or secret
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as error:
        print(f"error: {describe(settings)}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
