"""Helpers of the outage tests (tests/e2e/outages): requests timed while a dependency is out,
what a 503 must look like, and bringing the throwaway servers back."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from app.revocation.store import SHARDS
from devtools.postgres import LocalPostgres
from devtools.redis import LocalRedis
from tests.support import REDIS_PREFIX, RUN_ID

ANSWER_WITHIN = 6.0  # seconds: "within a few seconds", for every 503
RECOVER_WITHIN = 10.0  # seconds for the same server to answer 200 once a dependency is back
HTTP_TIMEOUT = httpx.Timeout(15.0)  # a hang fails the request, long before the run would hang
PASSWORD = "correct horse battery"
OUTAGE_DB = f"jwt_refresh_outage_{RUN_ID}"

_names = itertools.count()
TIMINGS: list[tuple[str, str, int, float]] = []  # (outage, request, status, seconds)


def bring_back(pg: LocalPostgres, rds: LocalRedis) -> None:
    pg.resume()
    rds.resume()
    if not pg.running:
        pg.start()
    if not rds.running:
        rds.start()


def wait_healthy(base: str) -> None:
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


def wait_whole(redis_url: str) -> None:
    """Until Redis holds the whole revocation state again: every shard's marker (see
    `RevocationStore.marker_key`). A Redis restarted empty is rebuilt from PostgreSQL by the
    server's feed within seconds; a test that stops PostgreSQL before that would meet the
    contract's 503 ("can't be known"), not the state it means to test."""
    deadline = time.monotonic() + RECOVER_WITHIN
    markers = [f"{REDIS_PREFIX}{{rv{n}}}:whole" for n in range(SHARDS)]
    client = redis.Redis.from_url(redis_url)
    try:
        while True:
            try:
                if client.exists(*markers) == len(markers):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the revocation state was not rebuilt in Redis")
            time.sleep(0.1)
    finally:
        client.close()


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
    down = [name for name, state in (("PostgreSQL", postgres), ("Redis", redis)) if state == "down"]
    verb = " are down" if len(down) == 2 else " is down"
    assert body["error_description"] == " and ".join(down) + verb, body  # in plain words


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


def print_timings() -> None:
    if not TIMINGS:
        return
    print("\n\nanswer times during outages (seconds):")
    for outage, request, status, seconds in TIMINGS:
        print(f"  {outage:<18} {request:<22} {status or 'hang':>4}  {seconds:6.3f}")


def refresh_survives(
    out: Outage, take_down: Callable[[], None], restore: Callable[[], None]
) -> None:
    """A refresh that met a 503 during this outage works once it is over, exactly once."""
    client = out.client
    _, tokens = new_user(client)
    take_down()
    response = out.request("POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert_unavailable(response, "POST /auth/refresh")
    restore()
    poll(client, "GET", "/health")

    first = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert first.status_code == 200, (
        f"after a 503 during '{out.name}' and recovery, the same refresh token is refused: "
        f"{first.status_code} {first.text}"
    )
    fresh = first.json()
    assert fresh["refresh_token"] != tokens["refresh_token"]
    assert client.get("/api/me", headers=bearer(fresh["access_token"])).status_code == 200
    # that token's one successor: a retry gets it again
    second = client.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] == fresh["refresh_token"]
    again = client.post("/auth/refresh", json={"refresh_token": fresh["refresh_token"]})
    assert again.status_code == 200, again.text
    out.assert_fast()
