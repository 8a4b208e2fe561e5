"""Test plumbing: the per-run database and Redis prefix, the app in this process (`Api`), and
a real server in a subprocess (`live_server`)."""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx
from sanic import Sanic
from sanic_testing.testing import SanicASGITestClient, TestingResponse

from devtools.appserver import app_server

ROOT = Path(__file__).resolve().parents[2]
RUN_ID = f"{os.getpid()}"
SECRET = "test-secret-" + "x" * 40
ADMIN_PASSWORD = "root password 1"
DEFAULT_SCOPE = "notes:read notes:write"

# Never the dev data: a database of our own per run (dropped at the end), and a key prefix
# of our own in a Redis database kept for tests (its keys deleted at the end).
_base_db = os.environ.get(
    "TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/jwt_refresh_test"
)
_parts = urlsplit(_base_db)
DATABASE_URL = urlunsplit(_parts._replace(path=f"{_parts.path.rstrip('/')}_{RUN_ID}"))
DATABASE_NAME = urlsplit(DATABASE_URL).path.lstrip("/")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REDIS_PREFIX = f"jwt-refresh-api-test:{RUN_ID}:"

# The fields of the contract's token response (login, refresh, token endpoint, password).
TOKEN_FIELDS = frozenset(
    {
        "access_token",
        "token_type",
        "expires_in",
        "refresh_token",
        "refresh_expires_in",
        "scope",
        "account_id",
        "session_id",
    }
)
# cookie delivery (browser apps): the refresh token in its cookie, the CSRF value instead
COOKIE_TOKEN_FIELDS = TOKEN_FIELDS - {"refresh_token"} | {"csrf_token"}

if not DATABASE_NAME.startswith("jwt_refresh_test"):
    raise RuntimeError(f"refusing to run tests against {DATABASE_NAME!r}")


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of a test server: every contract variable set, nothing from `.env`."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "DATABASE_", "REDIS_", "PROMETHEUS_"))
    }
    env.update(
        JWT_SECRET=SECRET,
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=REDIS_PREFIX,
        # TEST_APP_ROOT: serve another checkout's app (to see a new test fail on old code)
        PYTHONPATH=os.environ.get("TEST_APP_ROOT", str(ROOT)),
    )
    env.update(overrides)
    return env


def live_server(
    workers: int = 2, workdir: Path | None = None, **overrides: str
) -> AbstractContextManager[str]:
    """`sanic app.main --workers N` on a free port, on this run's database and Redis prefix;
    yields its base URL (see `devtools.appserver`; its log: `workdir`/server.log)."""
    return app_server(server_env(**overrides), workers=workers, workdir=workdir)


async def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdin: bytes = b"",
) -> tuple[int, str, str]:
    """Run `python -m app.cli ARGS`; its exit code, standard output and standard error."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        cwd=cwd or ROOT,
        env=server_env() if env is None else env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(stdin), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def reset_keys() -> None:
    """No signing keys: the next app or server to start creates a fresh set (of its
    JWT_ALGORITHM). Only where no server of another test is running."""
    import asyncpg

    connection = await asyncpg.connect(DATABASE_URL)
    try:
        await connection.execute("DELETE FROM signing_keys")
    finally:
        await connection.close()


# -- an app in this process, driven over ASGI -----------------------------------------------


async def start_app(app: Sanic[Any, Any]) -> None:
    """Run what a worker runs before serving (pools, revocation feed), once per app."""
    if getattr(app.ctx, "started", False):
        return
    app.ctx.started = True
    SanicASGITestClient(app)  # puts the app in ASGI test mode
    await app._startup()
    await app._server_event("init", "before")
    await app._server_event("init", "after")


async def stop_app(app: Sanic[Any, Any]) -> None:
    """Run what a worker runs after serving (in reverse order), if it was started."""
    if getattr(app.ctx, "started", False):
        app.ctx.started = False
        await app._server_event("shutdown", "before")
        await app._server_event("shutdown", "after")


class Api:
    """A few words over sanic-testing's ASGI client for the common steps.

    The app is started once, on the first request (`start_app`), and every request goes
    straight to the ASGI transport: sanic-testing's own `request` would reset the router and
    run the server listeners around every request (~100 ms each, and a pool closed under a
    concurrent request).
    """

    def __init__(self, app: Sanic[Any, Any]):
        self.app = app
        self.client = SanicASGITestClient(app)
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
                    await start_app(self.app)
                    self._started = True
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
