"""Dependency outages over real HTTP: 503 + Retry-After fast, recovery, and nothing lost.

The contract: "A dependency that is down (PostgreSQL, Redis) gives 503 temporarily_unavailable
with a Retry-After header, never a hang", and "a refresh that fails because a dependency is
down (503) does not burn the refresh token".

These tests never touch the shared servers: the module runs its own throwaway PostgreSQL and
Redis (`devtools.postgres`, `devtools.redis`) and one `sanic app.main --workers 1` subprocess
on them, for the whole module, so "recovery" really is the same server process answering
again. Two kinds of outage:

- stopped: `pg_ctl stop -m fast` / the redis-server process terminated; connections are
  refused at once.
- frozen: the server's processes get SIGSTOP; the port still accepts connections but nothing
  is ever answered. This is the outage that turns into a hang when a timeout is missing.

Every request has an httpx timeout, so a hang fails the test instead of hanging the run, and
every 503 must come within ANSWER_WITHIN seconds. The measured answer times are printed at the
end of the module (run with `-s` to see them).
"""

from __future__ import annotations

import time

import httpx
import pytest

from app.revocation.feed import TRUST_WINDOW
from devtools.postgres import LocalPostgres
from devtools.redis import LocalRedis
from tests.support import live_server
from tests.support.outages import (
    HTTP_TIMEOUT,
    PASSWORD,
    Outage,
    assert_health,
    assert_unavailable,
    bearer,
    new_user,
    refresh_survives,
)

pytestmark = pytest.mark.e2e


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
    refresh_survives(Outage("postgres frozen", client), pg.pause, pg.resume)


def test_refresh_during_frozen_redis_is_not_burnt(client: httpx.Client, rds: LocalRedis) -> None:
    refresh_survives(Outage("redis frozen", client), rds.pause, rds.resume)


# -- a worker that starts while PostgreSQL is down ----------------------------------------------


def test_a_worker_started_without_postgres_answers_503_until_it_has_the_keys(
    client: httpx.Client, pg: LocalPostgres, rds: LocalRedis, outage_database: str
) -> None:
    """It can't know the signing keys: a valid token is not 401 (nor 500) but 503, and so is
    the JWKS; once PostgreSQL is back it loads them within seconds and accepts the token."""
    _, tokens = new_user(client)
    pg.stop()
    with live_server(workers=1, DATABASE_URL=outage_database, REDIS_URL=rds.url()) as base:
        with httpx.Client(base_url=base, timeout=HTTP_TIMEOUT) as late:
            out = Outage("postgres down at start", late)
            response = out.request("GET", "/api/me", headers=bearer(tokens["access_token"]))
            assert_unavailable(response, "GET /api/me")
            assert_unavailable(out.request("GET", "/.well-known/jwks.json"), "GET jwks")
            out.assert_fast()
            pg.start()
            deadline = time.monotonic() + 15
            while True:
                response = late.get("/api/me", headers=bearer(tokens["access_token"]))
                if response.status_code == 200:
                    break
                assert response.status_code == 503, response.text
                assert time.monotonic() < deadline, "the keys were not loaded after recovery"
                time.sleep(0.3)
