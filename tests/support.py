"""Test plumbing: the per-run database and Redis prefix, and a real server in a subprocess."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
RUN_ID = f"{os.getpid()}"
SECRET = "test-secret-" + "x" * 40

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

if not DATABASE_NAME.startswith("jwt_refresh_test"):
    raise RuntimeError(f"refusing to run tests against {DATABASE_NAME!r}")


def server_env(**overrides: str) -> dict[str, str]:
    """The environment of a test server: every contract variable set, nothing from `.env`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_", "REDIS_"))}
    env.update(
        JWT_SECRET=SECRET,
        DATABASE_URL=DATABASE_URL,
        REDIS_URL=REDIS_URL,
        REDIS_KEY_PREFIX=REDIS_PREFIX,
        PYTHONPATH=str(ROOT),
    )
    env.update(overrides)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def live_server(workers: int = 2, **overrides: str) -> Iterator[str]:
    """`sanic app.main --workers N` on a free port; yields its base URL."""
    port = free_port()
    # A scratch working directory, so that no `.env` of the checkout leaks in.
    with tempfile.TemporaryDirectory() as cwd, open(Path(cwd) / "server.log", "wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "sanic",
                "app.main",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-motd",
            ],
            cwd=cwd,
            env=server_env(**overrides),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base, process, Path(cwd) / "server.log", workers)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, workers: int) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')}")
        ready = log.read_text(errors="replace").count("Worker ready")
        if ready >= workers:
            try:
                if httpx.get(base + "/health/live", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready in 30 s:\n{log.read_text(errors='replace')}")
