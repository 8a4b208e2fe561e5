"""Fixtures of the outage tests: a throwaway PostgreSQL and Redis and one `sanic app.main
--workers 1` on them per module, both dependencies up and healthy around every test."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from app.migrate import create_database, migrate
from devtools.postgres import LocalPostgres, local_postgres
from devtools.redis import LocalRedis, local_redis
from tests.support import live_server
from tests.support.outages import (
    HTTP_TIMEOUT,
    OUTAGE_DB,
    bring_back,
    listener_pids,
    print_timings,
    wait_healthy,
    wait_whole,
)


@pytest.fixture(scope="module")
def pg() -> Iterator[LocalPostgres]:
    with local_postgres() as server:
        yield server


@pytest.fixture(scope="module")
def rds() -> Iterator[LocalRedis]:
    with local_redis() as server:
        yield server


@pytest.fixture(scope="module")
async def outage_database(pg: LocalPostgres) -> str:
    url = pg.url(OUTAGE_DB)
    await create_database(url)
    await migrate(url)
    return url


@pytest.fixture(scope="module")
def server(outage_database: str, rds: LocalRedis) -> Iterator[str]:
    with live_server(workers=1, DATABASE_URL=outage_database, REDIS_URL=rds.url()) as base:
        yield base
    print_timings()


@pytest.fixture(scope="module")
def server_pids(server: str) -> frozenset[int]:
    """The processes holding the server's listening socket (the main process and its worker)
    before the first outage: a restarted worker would show up as a different set."""
    pids = listener_pids(int(server.rsplit(":", 1)[1]))
    assert pids, "could not find the processes of the live server"
    return pids


@pytest.fixture(autouse=True)
def dependencies_up(
    pg: LocalPostgres, rds: LocalRedis, server: str, server_pids: frozenset[int]
) -> Iterator[None]:
    """Every test starts, and leaves the next one, with both dependencies up and healthy,
    and Redis holding the whole revocation state (rebuilt after a restart that emptied it)."""
    bring_back(pg, rds)
    wait_healthy(server)
    wait_whole(rds.url())
    yield
    bring_back(pg, rds)
    wait_healthy(server)


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=HTTP_TIMEOUT) as http:
        yield http
