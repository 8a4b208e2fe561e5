"""Command line: migrate, create-db, create-user NAME [--admin] --password-stdin."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app import passwords
from app.config import ConfigError, Settings
from app.db import Database
from app.errors import UsernameTaken
from app.stores import users

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
# Any constant will do; it only has to be the same for every process migrating this database.
MIGRATION_LOCK = 0x6A77_7472_6566


async def migrate(dsn: str, directory: Path = MIGRATIONS) -> list[str]:
    """Apply the SQL files not yet recorded, in name order, each in its own transaction."""
    files = sorted(directory.glob("*.sql"))  # noqa: ASYNC240 - a handful of local files, once
    connection = await asyncpg.connect(dsn, timeout=10)
    applied_now: list[str] = []
    try:
        # Serialises concurrent migrators: the second waits, then finds nothing left to do.
        await connection.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
        await connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations"
            " (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"] for r in await connection.fetch("SELECT version FROM schema_migrations")
        }
        for path in files:
            if path.stem in done:
                continue
            async with connection.transaction():
                await connection.execute(path.read_text(encoding="utf-8"))
                await connection.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", path.stem
                )
            applied_now.append(path.stem)
        await connection.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
    finally:
        await connection.close()
    return applied_now


async def create_database(dsn: str) -> bool:
    """Create the database named in `dsn` if it is missing. True when it was created."""
    parts = urlsplit(dsn)
    name = parts.path.lstrip("/")
    if not name:
        raise ConfigError("DATABASE_URL names no database")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")), timeout=10)
    try:
        if await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        try:
            await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), "")}"')
        except asyncpg.DuplicateDatabaseError:
            return False
        return True
    finally:
        await admin.close()


async def create_user(dsn: str, username: str, password: str, admin: bool) -> str:
    from app.blueprints.auth import USERNAME, check_new_password

    if not USERNAME.fullmatch(username):
        raise SystemExit("error: the username must be 3 to 32 of A-Z a-z 0-9 _ . -")
    if len(password) > passwords.MAX_PASSWORD_LENGTH:
        raise SystemExit("error: the password is longer than 128 characters")
    try:
        check_new_password(username, password)
    except Exception as error:  # noqa: BLE001 - the policy's message is the answer
        raise SystemExit(f"error: {error}") from None
    scope = users.DEFAULT_SCOPE + (" " + users.ADMIN_SCOPE if admin else "")
    db = await Database.open(dsn, max_size=1)
    try:
        row = await users.create(db, username, await passwords.hash_password(password), scope)
    except UsernameTaken:
        raise SystemExit(f"error: the username {username!r} is taken") from None
    finally:
        await db.close()
    return str(row["id"])


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
    args = parser.parse_args(argv)
    try:
        dsn = Settings.from_env().database_url
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2

    try:
        if args.command == "migrate":
            applied = asyncio.run(migrate(dsn))
            print(f"applied {', '.join(applied)}" if applied else "migrations: up to date")
        elif args.command == "create-db":
            created = asyncio.run(create_database(dsn))
            print("database created" if created else "database exists")
        else:
            password = sys.stdin.readline().rstrip("\r\n")
            user_id = asyncio.run(create_user(dsn, args.username, password, args.admin))
            print(f"created user {args.username} ({user_id})")
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        print(f"error: PostgreSQL at {urlsplit(dsn).netloc or dsn}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
