"""Creating the database and applying the migrations to it, in order, exactly once each.

The SQL files live in the top-level `migrations/` of the checkout, which is installed as the
package `app.migrations`: a non-editable install migrates from any directory.
"""

from __future__ import annotations

from importlib import resources
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.config import ConfigError

# Any constant will do; it only has to be the same for every process migrating this database.
MIGRATION_LOCK = 0x6A77_7472_6566


class MigrationsMissing(ConfigError):
    """No migration files where the package says they are: a broken install."""


def migration_files() -> list[tuple[str, str]]:
    """(version, SQL) of every migration shipped with this install, in order."""
    try:
        directory = resources.files("app.migrations")
    except ModuleNotFoundError:
        raise MigrationsMissing(
            "the migrations (package app.migrations) are not installed"
        ) from None
    files = sorted(
        (entry.name.removesuffix(".sql"), entry)
        for entry in directory.iterdir()
        if entry.name.endswith(".sql")
    )
    if not files:
        raise MigrationsMissing(f"no migration files in {directory}: the install is broken")
    return [(version, entry.read_text(encoding="utf-8")) for version, entry in files]


def latest_version() -> str:
    return migration_files()[-1][0]


async def migrate(dsn: str, files: list[tuple[str, str]] | None = None) -> list[str]:
    """Apply the migrations not yet recorded, in name order, each in its own transaction."""
    files = migration_files() if files is None else files
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
        for version, sql in files:
            if version in done:
                continue
            async with connection.transaction():
                await connection.execute(sql)
                await connection.execute(
                    "INSERT INTO schema_migrations (version) VALUES ($1)", version
                )
            applied_now.append(version)
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
