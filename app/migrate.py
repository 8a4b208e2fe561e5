"""Creating the database and applying `migrations/` to it, in order, exactly once each."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from app.config import ConfigError

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
