"""Dependency outages over real HTTP: 503 + Retry-After fast, recovery, and nothing lost.

The contract: "A dependency that is down (PostgreSQL, Redis) gives 503 temporarily_unavailable
with a Retry-After header, never a hang", and "a refresh that fails because a dependency is
down (503) does not burn the refresh token".

These tests never touch the shared servers: the module runs its own throwaway PostgreSQL and
Redis (tests/local_servers.py) and one `sanic app.main --workers 1` subprocess on them, for the
whole module, so "recovery" really is the same server process answering again. Two kinds of
outage:

- stopped: `pg_ctl stop -m fast` / the redis-server process terminated; connections are
  refused at once.
- frozen: the server's processes get SIGSTOP; the port still accepts connections but nothing
  is ever answered. This is the outage that turns into a hang when a timeout is missing.

Every request has an httpx timeout, so a hang fails the test instead of hanging the run, and
every 503 must come within ANSWER_WITHIN seconds. The measured answer times are printed at the
end of the module (run with `-s` to see them).
"""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.cli import create_database, migrate
from app.stores.revocation import TRUST_WINDOW
from tests.local_servers import LocalPostgres, LocalRedis, local_postgres, local_redis
from tests.support import RUN_ID, live_server

pytestmark = pytest.mark.e2e

ANSWER_WITHIN = 6.0  # seconds: "within a few seconds", for every 503
RECOVER_WITHIN = 10.0  # seconds for the same server to answer 200 once a dependency is back
HTTP_TIMEOUT = httpx.Timeout(15.0)  # a hang fails the request, long before the run would hang
PASSWORD = "correct horse battery"
OUTAGE_DB = f"jwt_refresh_outage_{RUN_ID}"

_names = itertools.count()
TIMINGS: list[tuple[str, str, int, float]] = []  # (outage, request, status, seconds)


# -- servers --------------------------------------------------------------------------------


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
    _print_timings()


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
    """Every test starts, and leaves the next one, with both dependencies up and healthy."""
    _bring_back(pg, rds)
    _wait_healthy(server)
    yield
    _bring_back(pg, rds)
    _wait_healthy(server)


def _bring_back(pg: LocalPostgres, rds: LocalRedis) -> None:
    pg.resume()
    rds.resume()
    if not pg.running:
        pg.start()
    if not rds.running:
        rds.start()


def _wait_healthy(base: str) -> None:
    deadline = time.monotonic() + RECOVER_WITHIN
    last: Any = None
    with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as client:
        while time.monotonic() < deadline:
            try:
                last = client.get("/health")
                if last.status_code == 200:
                    return
            except httpx.HTTPError as error:
                last = error
            time.sleep(0.1)
    raise AssertionError(f"the server did not become healthy again: {last!r}")


def listener_pids(port: int) -> frozenset[int]:
    """Pids holding a socket that listens on 127.0.0.1:`port` (from /proc, Linux)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    pids: set[int] = set()
    targets = {f"socket:[{inode}]" for inode in inodes}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            for fd in os.listdir(f"/proc/{entry}/fd"):
                if os.readlink(f"/proc/{entry}/fd/{fd}") in targets:
                    pids.add(int(entry))
                    break
        except OSError:
            continue
    return frozenset(pids)


# -- requests -------------------------------------------------------------------------------


@pytest.fixture
def client(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=HTTP_TIMEOUT) as http:
        yield http


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_user(client: httpx.Client) -> tuple[str, dict[str, Any]]:
    """Register and log in (both dependencies up): the username and the token response."""
    username = f"outage_{RUN_ID}_{next(_names)}"
    response = client.post("/auth/register", json={"username": username, "password": PASSWORD})
    assert response.status_code == 201, response.text
    return username, login(client, username)


def login(client: httpx.Client, username: str) -> dict[str, Any]:
    response = client.post("/auth/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    return tokens


class Outage:
    """The requests made while a dependency is out: each one timed and recorded.

    A timeout (a hang) fails the test at once; how fast the answers came is checked by
    `assert_fast` at the end of the test, so one slow answer does not hide what the other
    requests of the test did.
    """

    def __init__(self, name: str, client: httpx.Client):
        self.name = name
        self.client = client
        self.measured: list[tuple[str, float]] = []

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        what = f"{method} {path}"
        started = time.monotonic()
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            elapsed = time.monotonic() - started
            TIMINGS.append((self.name, what, 0, elapsed))
            pytest.fail(f"{what} with {self.name}: no answer in {elapsed:.1f} s (a hang)")
        elapsed = time.monotonic() - started
        TIMINGS.append((self.name, what, response.status_code, elapsed))
        self.measured.append((what, round(elapsed, 3)))
        return response

    def assert_fast(self) -> None:
        slow = [f"{what}: {sec:.2f} s" for what, sec in self.measured if sec >= ANSWER_WITHIN]
        assert not slow, (
            f"{self.name}: answers not within {ANSWER_WITHIN} s: {slow} (all: {self.measured})"
        )


def assert_unavailable(response: httpx.Response, what: str) -> dict[str, Any]:
    """503 temporarily_unavailable in the contract's error shape, with Retry-After."""
    assert response.status_code == 503, (what, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), (what, response.headers)
    body: dict[str, Any] = response.json()
    assert body.get("error") == "temporarily_unavailable", (what, body)
    assert isinstance(body.get("error_description"), str) and body["error_description"], (
        what,
        body,
    )
    assert "Traceback" not in response.text, (what, response.text)
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None and re.fullmatch(r"[1-9][0-9]*", retry_after), (
        what,
        dict(response.headers),
    )
    return body


def assert_health(response: httpx.Response, *, postgres: str, redis: str) -> None:
    assert_unavailable(response, "GET /health")
    body = response.json()
    assert body["postgres"] == postgres and body["redis"] == redis, body
    down = [name for name, state in (("postgres", postgres), ("redis", redis)) if state == "down"]
    for name in down:
        assert name in body["error_description"], body


def poll(
    client: httpx.Client,
    method: str,
    path: str,
    expect: int = 200,
    within: float = RECOVER_WITHIN,
    **kwargs: Any,
) -> tuple[httpx.Response, float]:
    """Repeat a request until it answers `expect` (recovery); the response and the time taken."""
    started = time.monotonic()
    while True:
        try:
            response = client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            pytest.fail(f"{method} {path}: no answer while recovering (a hang)")
        elapsed = time.monotonic() - started
        if response.status_code == expect or elapsed > within:
            assert response.status_code == expect, (
                f"{method} {path} still answers {response.status_code} {elapsed:.1f} s after "
                f"the dependency came back: {response.text}"
            )
            return response, elapsed
        time.sleep(0.1)


def _print_timings() -> None:
    if not TIMINGS:
        return
    print("\n\nanswer times during outages (seconds):")
    for outage, request, status, seconds in TIMINGS:
        print(f"  {outage:<18} {request:<22} {status or 'hang':>4}  {seconds:6.3f}")


# -- Redis stopped ----------------------------------------------------------------------------


def test_redis_down_answers_503_fast(client: httpx.Client, rds: LocalRedis) -> None:
    username, tokens = new_user(client)
    rds.stop()
    out = Outage("redis stopped", client)

    response = out.request("GET", "/api/me", headers=bearer(tokens["access_token"]))
    assert_unavailable(response, "GET /api/me")
    response = out.request("POST", "/auth/login", json={"username": username, "password": PASSWORD})
    assert_unavailable(response, "POST /auth/login")
    response = out.request("POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unavailable(response, "POST /auth/refresh")
    out.assert_fast()


def test_redis_down_health_names_redis(client: httpx.Client, rds: LocalRedis) -> None:
    rds.stop()
    out = Outage("redis stopped", client)
    assert_health(out.request("GET", "/health"), postgres="ok", redis="down")
    live = out.request("GET", "/health/live")
    assert live.status_code == 200 and live.json() == {"status": "ok"}, live.text
    out.assert_fast()


# -- PostgreSQL stopped -----------------------------------------------------------------------


def test_postgres_down_answers_503_fast(client: httpx.Client, pg: LocalPostgres) -> None:
    username, tokens = new_user(client)
    pg.stop()
    out = Outage("postgres stopped", client)

    response = out.request("POST", "/auth/login", json={"username": username, "password": PASSWORD})
    assert_unavailable(response, "POST /auth/login")
    response = out.request("POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unavailable(response, "POST /auth/refresh")
    response = out.request("GET", "/api/notes", headers=bearer(tokens["access_token"]))
    assert_unavailable(response, "GET /api/notes")
    out.assert_fast()


def test_postgres_down_health_names_postgres_and_me_still_works(
    client: httpx.Client, pg: LocalPostgres
) -> None:
    username, tokens = new_user(client)
    pg.stop()
    out = Outage("postgres stopped", client)
    assert_health(out.request("GET", "/health"), postgres="down", redis="ok")
    # /api/me is answered from the token and the Redis revocation check alone
    me = out.request("GET", "/api/me", headers=bearer(tokens["access_token"]))
    assert me.status_code == 200, me.text
    assert me.json()["username"] == username
    out.assert_fast()


# -- recovery without a restart ---------------------------------------------------------------


def test_redis_recovers_without_restart(
    client: httpx.Client, rds: LocalRedis, server: str, server_pids: frozenset[int]
) -> None:
    username, tokens = new_user(client)
    rds.stop()
    out = Outage("redis stopped", client)
    assert_unavailable(
        out.request("GET", "/api/me", headers=bearer(tokens["access_token"])), "GET /api/me"
    )

    rds.start()
    health, took = poll(client, "GET", "/health")
    assert health.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}
    TIMINGS.append(("redis back", "GET /health -> 200", 200, took))
    poll(client, "GET", "/api/me", headers=bearer(tokens["access_token"]))
    poll(client, "POST", "/auth/login", json={"username": username, "password": PASSWORD})
    assert listener_pids(int(server.rsplit(":", 1)[1])) == server_pids, "the server was restarted"
    out.assert_fast()


def test_postgres_recovers_without_restart(
    client: httpx.Client, pg: LocalPostgres, server: str, server_pids: frozenset[int]
) -> None:
    username, tokens = new_user(client)
    assert client.get("/api/notes", headers=bearer(tokens["access_token"])).status_code == 200
    pg.stop()
    out = Outage("postgres stopped", client)
    assert_unavailable(
        out.request("GET", "/api/notes", headers=bearer(tokens["access_token"])), "GET /api/notes"
    )

    pg.start()
    health, took = poll(client, "GET", "/health")
    assert health.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}
    TIMINGS.append(("postgres back", "GET /health -> 200", 200, took))
    poll(client, "GET", "/api/notes", headers=bearer(tokens["access_token"]))
    poll(client, "POST", "/auth/login", json={"username": username, "password": PASSWORD})
    assert listener_pids(int(server.rsplit(":", 1)[1])) == server_pids, "the server was restarted"
    out.assert_fast()


# -- nothing lost: a 503 refresh does not burn the token -------------------------------------


def _refresh_survives(
    out: Outage, take_down: Callable[[], None], bring_back: Callable[[], None]
) -> None:
    client = out.client
    _, tokens = new_user(client)
    take_down()
    response = out.request("POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unavailable(response, "POST /auth/refresh")
    bring_back()
    poll(client, "GET", "/health")

    first = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200, (
        f"after a 503 during '{out.name}' and recovery, the same refresh token is refused: "
        f"{first.status_code} {first.text}"
    )
    fresh = first.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert client.get("/api/me", headers=bearer(fresh["access_token"])).status_code == 200
    second = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert second.status_code == 401, second.text
    assert second.json()["error"] == "invalid_grant", second.text
    # the winner of that one refresh is still logged in (the reuse was within the grace)
    again = client.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert again.status_code == 200, again.text
    out.assert_fast()


def test_refresh_during_postgres_outage_is_not_burnt(
    client: httpx.Client, pg: LocalPostgres
) -> None:
    _refresh_survives(Outage("postgres stopped", client), pg.stop, pg.start)


def test_refresh_during_redis_outage_is_not_burnt(client: httpx.Client, rds: LocalRedis) -> None:
    _refresh_survives(Outage("redis stopped", client), rds.stop, rds.start)


# -- logout is never acknowledged unless the revocation is stored ----------------------------


def test_logout_during_redis_outage_is_not_acknowledged(
    client: httpx.Client, rds: LocalRedis
) -> None:
    _, tokens = new_user(client)
    access = bearer(tokens["access_token"])
    rds.stop()
    out = Outage("redis stopped", client)
    response = out.request("POST", "/auth/logout", headers=access)
    assert response.status_code != 204, "a logout acknowledged while Redis (revocations) is down"
    assert_unavailable(response, "POST /auth/logout")

    rds.start()
    poll(client, "GET", "/health")
    retry = client.post("/auth/logout", headers=access)
    assert retry.status_code == 204, retry.text
    refused = client.get("/api/me", headers=access)
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"] == "invalid_token"
    dead = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert dead.status_code == 401, dead.text
    out.assert_fast()


def test_logout_during_postgres_outage_can_be_completed(
    client: httpx.Client, pg: LocalPostgres
) -> None:
    """A logout that answered 503 must be retryable: once PostgreSQL is back, the client's retry
    either completes it (204) or finds it done (401), and the session's refresh token is dead."""
    _, tokens = new_user(client)
    access = bearer(tokens["access_token"])
    pg.stop()
    out = Outage("postgres stopped", client)
    response = out.request("POST", "/auth/logout", headers=access)
    assert response.status_code != 204, "a logout acknowledged while PostgreSQL is down"
    assert_unavailable(response, "POST /auth/logout")

    pg.start()
    poll(client, "GET", "/health")
    retry = client.post("/auth/logout", headers=access)
    assert retry.status_code in (204, 401), retry.text
    refresh = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refresh.status_code == 401, (
        f"logout answered 503, its retry {retry.status_code} {retry.text}, yet the session's "
        f"refresh token still rotates: {refresh.status_code} {refresh.text[:60]}..."
    )
    out.assert_fast()


# -- frozen dependencies: connections accepted, nothing answered ------------------------------


def test_frozen_redis_answers_503_fast(client: httpx.Client, rds: LocalRedis) -> None:
    username, tokens = new_user(client)
    rds.pause()
    # For TRUST_WINDOW after its last heartbeat, a worker's in-process copy of the revocation
    # state is still trusted (nothing can be revoked while Redis is frozen); after it, the
    # bearer check asks Redis, which does not answer: 503.
    time.sleep(TRUST_WINDOW + 0.3)
    out = Outage("redis frozen", client)

    response = out.request("GET", "/api/me", headers=bearer(tokens["access_token"]))
    assert_unavailable(response, "GET /api/me")
    response = out.request("POST", "/auth/login", json={"username": username, "password": PASSWORD})
    assert_unavailable(response, "POST /auth/login")
    response = out.request("POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unavailable(response, "POST /auth/refresh")
    assert_health(out.request("GET", "/health"), postgres="ok", redis="down")
    live = out.request("GET", "/health/live")
    assert live.status_code == 200, live.text
    out.assert_fast()


def test_frozen_postgres_answers_503_fast(client: httpx.Client, pg: LocalPostgres) -> None:
    username, tokens = new_user(client)
    access = bearer(tokens["access_token"])
    # A connection sits idle in the server's pool, as it would in production.
    assert client.get("/api/notes", headers=access).status_code == 200
    pg.pause()
    out = Outage("postgres frozen", client)

    assert_unavailable(out.request("GET", "/api/notes", headers=access), "GET /api/notes")
    response = out.request("POST", "/auth/login", json={"username": username, "password": PASSWORD})
    assert_unavailable(response, "POST /auth/login")
    response = out.request("POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unavailable(response, "POST /auth/refresh")
    assert_health(out.request("GET", "/health"), postgres="down", redis="ok")
    me = out.request("GET", "/api/me", headers=access)
    assert me.status_code == 200, me.text
    out.assert_fast()


def test_refresh_during_frozen_postgres_is_not_burnt(
    client: httpx.Client, pg: LocalPostgres
) -> None:
    _refresh_survives(Outage("postgres frozen", client), pg.pause, pg.resume)


def test_refresh_during_frozen_redis_is_not_burnt(client: httpx.Client, rds: LocalRedis) -> None:
    _refresh_survives(Outage("redis frozen", client), rds.pause, rds.resume)


# -- Redis restarted without persistence ------------------------------------------------------


def _never_200_until_refused(client: httpx.Client, headers: dict[str, str]) -> float:
    """After a Redis restart, a revoked token may meet a 503 while things come back, but
    never a 200: poll until it is refused. The seconds it took."""
    started = time.monotonic()
    while True:
        response = client.get("/api/me", headers=headers)
        assert response.status_code in (401, 503), (
            "a revoked token was accepted after Redis came back empty",
            response.status_code,
            response.text,
        )
        if response.status_code == 401:
            assert response.json()["error"] == "invalid_token"
            return time.monotonic() - started
        assert time.monotonic() - started < RECOVER_WITHIN, response.text
        time.sleep(0.05)


def test_redis_restart_does_not_revive_revoked_tokens(
    client: httpx.Client, rds: LocalRedis
) -> None:
    """Redis here keeps nothing on disk. PostgreSQL keeps the record of every revocation, and
    the service rebuilds Redis from it, so a restart must not bring a revoked token back."""
    username, tokens = new_user(client)
    logged_out = bearer(tokens["access_token"])
    kept = login(client, username)
    everywhere_user, everywhere = new_user(client)
    everywhere_access = bearer(everywhere["access_token"])
    for headers in (logged_out, bearer(kept["access_token"]), everywhere_access):
        assert client.get("/api/me", headers=headers).status_code == 200
    assert client.post("/auth/logout", headers=logged_out).status_code == 204
    assert client.post("/auth/logout-all", headers=everywhere_access).status_code == 204

    rds.stop()
    rds.start()  # empty: no revocation keys, no marker

    seconds = _never_200_until_refused(client, logged_out)
    TIMINGS.append(("redis restarted empty", "GET /api/me (logged out)", 401, seconds))
    _never_200_until_refused(client, everywhere_access)
    # the session that was not ended works again, and the others stay refused
    poll(client, "GET", "/api/me", headers=bearer(kept["access_token"]))
    assert client.get("/api/me", headers=logged_out).status_code == 401
    refreshed = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401, refreshed.text
    assert login(client, everywhere_user)["session_id"] != everywhere["session_id"]
