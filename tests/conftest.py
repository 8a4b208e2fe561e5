"""Fixtures: a migrated test database per run, an app per settings, and clean state per test."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import os
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis
from sanic import Sanic
from sanic_testing.testing import TestingResponse

from app.cli import create_database, migrate
from app.config import Settings
from app.factory import close_resources, create_app, open_resources
from tests import support

Sanic.test_mode = True

TEST_SETTINGS = Settings(
    jwt_secret=support.SECRET,
    database_url=support.DATABASE_URL,
    redis_url=support.REDIS_URL,
    redis_key_prefix=support.REDIS_PREFIX,
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


async def _delete_keys(client: Redis) -> None:
    keys = [key async for key in client.scan_iter(match=support.REDIS_PREFIX + "*", count=500)]
    if keys:
        await client.delete(*keys)


@pytest.fixture(autouse=True)
async def clean_state(database: str, redis: Redis) -> AsyncIterator[None]:
    """Every test starts with no users, sessions, notes or Redis marks."""
    yield
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("TRUNCATE users, sessions, notes CASCADE")
    finally:
        await connection.close()
    await _delete_keys(redis)


def make_settings(**overrides: Any) -> Settings:
    return dataclasses.replace(TEST_SETTINGS, **overrides)


@pytest.fixture
async def make_app() -> AsyncIterator[Callable[..., Sanic[Any, Any]]]:
    """`make_app(access_token_ttl=2)`: an app on the test settings with some replaced.

    The fixture opens each app's pools once and closes them after the test, instead of the
    server listeners, which sanic-testing's ASGI client would run around every request (and
    which would close a pool under a concurrent request).
    """
    apps: list[Sanic[Any, Any]] = []

    def factory(**overrides: Any) -> Sanic[Any, Any]:
        app = create_app(
            settings=make_settings(**overrides),
            name=f"test_app_{next(_app_names)}",
            listeners=False,
        )
        app.config.TOUCHUP = False  # the ASGI client restarts the app per request: keep it cheap
        apps.append(app)
        return app

    yield factory
    for app in apps:
        if hasattr(app.ctx, "db"):
            await close_resources(app)


@pytest.fixture
async def app(make_app: Callable[..., Sanic[Any, Any]]) -> Sanic[Any, Any]:
    app = make_app()
    await open_resources(app)
    return app


class Api:
    """A few words over sanic-testing's ASGI client for the common steps.

    The first request goes through sanic-testing as usual (it starts the app); later ones go
    straight to the same ASGI transport, because sanic-testing would reset the router and
    restart the app around every request (~100 ms each) for nothing: the pools are ours.
    """

    def __init__(self, app: Sanic[Any, Any]):
        self.app = app
        self.client = app.asgi_client
        self._started = False
        self._starting = asyncio.Lock()

    async def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        headers = dict(headers or {})
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if not self._started:
            async with self._starting:
                if not self._started:
                    if not hasattr(self.app.ctx, "db"):
                        await open_resources(self.app)
                    _, response = await self.client.request(
                        method.lower(), path, headers=headers, **kwargs
                    )
                    self._started = True
                    return response
        response = await httpx.AsyncClient.request(
            self.client, method.upper(), path, headers=headers, **kwargs
        )
        response.__class__ = TestingResponse
        return response

    async def register(self, username: str = "alice", password: str = "correct horse") -> Any:
        response = await self.request(
            "POST", "/auth/register", json={"username": username, "password": password}
        )
        assert response.status == 201, response.text
        return response.json

    async def login(
        self, username: str = "alice", password: str = "correct horse", **extra: Any
    ) -> dict[str, Any]:
        response = await self.request(
            "POST", "/auth/login", json={"username": username, "password": password, **extra}
        )
        assert response.status == 200, response.text
        tokens: dict[str, Any] = response.json
        return tokens

    async def user(
        self, username: str = "alice", password: str = "correct horse", **extra: Any
    ) -> dict[str, Any]:
        """Register and log in: the token response."""
        await self.register(username, password)
        return await self.login(username, password, **extra)

    async def refresh(self, refresh_token: str) -> Any:
        return await self.request("POST", "/auth/refresh", json={"refresh_token": refresh_token})


@pytest.fixture
def api(app: Sanic[Any, Any]) -> Api:
    return Api(app)


@pytest.fixture
def make_api(make_app: Callable[..., Sanic[Any, Any]]) -> Callable[..., Api]:
    """`api = make_api(refresh_reuse_grace=0)`: its pools open on its first request."""
    return lambda **overrides: Api(make_app(**overrides))


