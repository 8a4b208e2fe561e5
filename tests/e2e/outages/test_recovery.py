"""Recovery from dependency outages, and nothing lost: the same server answers again without
a restart, a refresh that met a 503 is not burnt, a logout is acknowledged only once stored,
and a Redis that lost its data never brings a revoked token back.
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
    RECOVER_WITHIN,
    TIMINGS,
    Outage,
    assert_unavailable,
    bearer,
    listener_pids,
    login,
    new_user,
    poll,
    refresh_survives,
)

pytestmark = pytest.mark.e2e


# -- recovery without a restart ---------------------------------------------------------------


def test_redis_recovers_without_restart(
    client: httpx.Client, rds: LocalRedis, server: str, server_pids: frozenset[int]
) -> None:
    username, tokens = new_user(client)
    rds.stop()
    out = Outage("redis stopped", client)
    # The contract: a worker's copy of the revocations answers for at most TRUST_WINDOW after
    # its last heartbeat (no revocation can be made meanwhile: that needs Redis), then 503.
    deadline = time.monotonic() + TRUST_WINDOW + 1.0
    while True:
        me = out.request("GET", "/api/me", headers=bearer(tokens["access_token"]))
        if me.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert_unavailable(me, "GET /api/me, once the copy's trust ran out")

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


def test_refresh_during_postgres_outage_is_not_burnt(
    client: httpx.Client, pg: LocalPostgres
) -> None:
    refresh_survives(Outage("postgres stopped", client), pg.stop, pg.start)


def test_refresh_during_redis_outage_is_not_burnt(client: httpx.Client, rds: LocalRedis) -> None:
    refresh_survives(Outage("redis stopped", client), rds.stop, rds.start)


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


def test_a_worker_starting_on_an_empty_redis_while_postgres_is_down_never_trusts(
    client: httpx.Client, pg: LocalPostgres, rds: LocalRedis, outage_database: str
) -> None:
    """Redis came back empty and PostgreSQL is down, so the revocations can't be rebuilt: a
    worker that starts now has an empty copy and an empty Redis, and must trust neither
    (503), never accept a revoked token, until PostgreSQL is back and the state rebuilt."""
    _, tokens = new_user(client)
    logged_out = bearer(tokens["access_token"])
    assert client.post("/auth/logout", headers=logged_out).status_code == 204
    pg.stop()
    rds.stop()
    rds.start()  # empty: no revocation keys, no marker
    with (
        live_server(workers=1, DATABASE_URL=outage_database, REDIS_URL=rds.url()) as fresh,
        httpx.Client(base_url=fresh, timeout=HTTP_TIMEOUT) as other,
    ):
        deadline = time.monotonic() + 3 * TRUST_WINDOW + 1
        statuses = set()
        while time.monotonic() < deadline:
            response = other.get("/api/me", headers=logged_out)
            assert response.status_code != 200, "a revoked token was accepted by a new worker"
            statuses.add(response.status_code)
            time.sleep(0.05)
        assert statuses == {503}, statuses
        pg.start()
        _never_200_until_refused(other, logged_out)
