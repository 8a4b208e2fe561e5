"""`make run` on a machine where nothing answers: `devtools.services` starts project-local
PostgreSQL and Redis servers from the installed binaries, leaves running ones alone, and
stops its own again."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from redis.asyncio import Redis

from devtools import answers, free_port
from tests.support import ROOT

pytestmark = pytest.mark.e2e


def services(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "devtools.services", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def local() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="jwt-local-"))
    directory.chmod(0o755)  # as root, the cluster's owner `postgres` must reach its data
    try:
        yield directory
    finally:
        services("--stop", "--local", str(directory))
        shutil.rmtree(directory, ignore_errors=True)


async def test_starts_what_does_not_answer_and_stops_it(local: Path) -> None:
    pg_port, redis_port = free_port(), free_port()
    pg_url = f"postgresql://postgres@127.0.0.1:{pg_port}/postgres"
    redis_url = f"redis://127.0.0.1:{redis_port}/0"

    started = services(pg_url, redis_url, "--local", str(local))
    assert started.returncode == 0, started.stderr
    assert f"starting a project-local PostgreSQL on 127.0.0.1:{pg_port}" in started.stderr
    assert f"starting a project-local Redis on 127.0.0.1:{redis_port}" in started.stderr
    connection = await asyncpg.connect(pg_url, timeout=10)
    try:
        assert await connection.fetchval("SELECT 1") == 1
    finally:
        await connection.close()
    async with Redis.from_url(redis_url) as redis:
        assert await redis.ping()

    again = services(pg_url, redis_url, "--local", str(local))
    assert again.returncode == 0, again.stderr
    assert "starting" not in again.stderr  # both answer: nothing new is started

    stopped = services("--stop", "--local", str(local))
    assert stopped.returncode == 0, stopped.stderr
    for _ in range(50):
        if not answers("127.0.0.1", pg_port) and not answers("127.0.0.1", redis_port):
            break
        await asyncio.sleep(0.1)
    assert not answers("127.0.0.1", pg_port) and not answers("127.0.0.1", redis_port)
    assert (local / f"postgres-{pg_port}" / "PG_VERSION").is_file()  # the data stays


def test_a_remote_server_that_does_not_answer_is_named(local: Path) -> None:
    # 192.0.2.0/24 is TEST-NET-1: nothing answers there, and it is not loopback
    result = services(
        "postgresql://postgres@192.0.2.1:5432/x", "redis://127.0.0.1:6379/0", "--local", str(local)
    )
    assert result.returncode == 1
    assert "PostgreSQL does not answer at 192.0.2.1:5432" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(local.iterdir())


def test_running_servers_are_left_alone(local: Path) -> None:
    env_pg = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/x")
    env_redis = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    result = services(env_pg, env_redis, "--local", str(local))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert not any(local.iterdir())
