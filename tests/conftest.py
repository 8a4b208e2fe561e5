"""Fixtures: a migrated test database per run, an app per settings, and clean state per test."""

from __future__ import annotations

import dataclasses
import itertools
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from redis.asyncio import Redis
from sanic import Sanic

from app.config import Settings
from app.factory import create_app
from app.migrate import create_database, migrate
from tests import support
from tests.support import Api, start_app, stop_app

Sanic.test_mode = True

TEST_SETTINGS = Settings(
    jwt_secret=support.SECRET,
    database_url=support.DATABASE_URL,
    redis_url=support.REDIS_URL,
    redis_key_prefix=support.REDIS_PREFIX,
    purge_interval=0,  # the tests of the purge run it themselves
)
_app_names = itertools.count()


@pytest.fixture(scope="session")
def settings() -> Settings:
    return TEST_SETTINGS


@pytest.fixture(scope="session", autouse=True)
async def database() -> AsyncIterator[str]:
    """Create and migrate this run's database once; drop it at the end."""
    await _drop_abandoned_databases()
    await create_database(support.DATABASE_URL)
    await migrate(support.DATABASE_URL)
    yield support.DATABASE_URL
    admin_dsn = support.DATABASE_URL.rsplit("/", 1)[0] + "/postgres"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{support.DATABASE_NAME}" WITH (FORCE)')
    finally:
        await admin.close()


async def _drop_abandoned_databases() -> None:
    """Drop the databases of earlier runs that were killed before they could clean up."""
    admin = await asyncpg.connect(support.DATABASE_URL.rsplit("/", 1)[0] + "/postgres")
    try:
        prefix = support.DATABASE_NAME.rsplit("_", 1)[0] + "_"
        for row in await admin.fetch("SELECT datname FROM pg_database"):
            name, _, pid = row["datname"].rpartition("_")
            if name + "_" != prefix or not pid.isdigit() or _alive(int(pid)):
                continue
            await admin.execute(f'DROP DATABASE IF EXISTS "{row["datname"]}" WITH (FORCE)')
    finally:
        await admin.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@pytest.fixture(scope="session")
async def redis() -> AsyncIterator[Redis]:
    client = Redis.from_url(support.REDIS_URL, decode_responses=True)
    yield client
    await _delete_keys(client)
    await client.aclose()


@pytest.fixture
async def db(database: str) -> AsyncIterator[asyncpg.Connection]:
    """A direct connection to the test database, for asserting what was stored."""
    connection = await asyncpg.connect(database)
    yield connection
    await connection.close()


async def _delete_keys(client: Redis, *, registry: bool = True) -> None:
    """Every key of this run; but for `registry=False`, the revocation feed's registry of
    live workers: module-scoped servers keep running between tests, and a registry lost
    under them makes their next revocation wait out ACK_TIMEOUT (as it must)."""
    keys = [key async for key in client.scan_iter(match=support.REDIS_PREFIX + "*", count=500)]
    if not registry:
        keys = [key for key in keys if key != f"{support.REDIS_PREFIX}{{feed}}:workers"]
    if keys:
        await client.delete(*keys)


@pytest.fixture(autouse=True)
async def clean_state(database: str, redis: Redis) -> AsyncIterator[None]:
    """Every test starts with no users, sessions, notes or Redis marks."""
    yield
    connection = await asyncpg.connect(database)
    try:
        await connection.execute(
            "TRUNCATE users, sessions, notes, events, maintenance, global_cut_off CASCADE"
        )
    finally:
        await connection.close()
    await _delete_keys(redis, registry=False)


def make_settings(**overrides: Any) -> Settings:
    return dataclasses.replace(TEST_SETTINGS, **overrides)


@pytest.fixture
async def make_app() -> AsyncIterator[Callable[..., Sanic[Any, Any]]]:
    """`make_app(access_token_ttl=2)`: an app on the test settings with some replaced.

    Its workers' listeners (pools, revocation feed) run once, on its first request through
    `Api` (or `start_app`), and their shutdown half after the test.
    """
    apps: list[Sanic[Any, Any]] = []

    def factory(**overrides: Any) -> Sanic[Any, Any]:
        app = create_app(settings=make_settings(**overrides), name=f"test_app_{next(_app_names)}")
        app.config.TOUCHUP = False
        apps.append(app)
        return app

    yield factory
    for app in apps:
        await stop_app(app)


@pytest.fixture
async def app(make_app: Callable[..., Sanic[Any, Any]]) -> Sanic[Any, Any]:
    app = make_app()
    await start_app(app)
    return app


@pytest.fixture
def api(app: Sanic[Any, Any]) -> Api:
    return Api(app)


@pytest.fixture
def make_api(make_app: Callable[..., Sanic[Any, Any]]) -> Callable[..., Api]:
    """`api = make_api(refresh_reuse_grace=0)`: its pools open on its first request."""
    return lambda **overrides: Api(make_app(**overrides))
