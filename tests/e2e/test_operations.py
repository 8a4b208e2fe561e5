"""Operations over real HTTP against `sanic app.main --workers 2`: /metrics is one view over
every worker and answers only to METRICS_TOKEN; JSON log lines carry the request id; an
unreachable dependency is named once at start."""

from __future__ import annotations

import asyncio
import json
import re
import time
from pathlib import Path

import httpx
import pytest

from devtools import free_port
from tests.support import live_server
from tests.support.client import new_username, raw_login, register

METRICS_TOKEN = "metrics-token-for-the-tests-0123456789"
PASSWORD = "correct horse"


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    pattern = re.escape(name) + (r"\{" + re.escape(wanted) + r"\}" if labels else "") + r" (\S+)"
    match = re.search("^" + pattern + "$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def scrape(base: str, token: str | None = METRICS_TOKEN) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        return await client.get("/metrics", headers=headers)


async def test_metrics_add_up_over_two_workers_and_refuse_anonymous_callers(
    tmp_path: Path,
) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    with live_server(
        workers=2, METRICS_TOKEN=METRICS_TOKEN, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    ) as base:
        assert (await scrape(base, None)).status_code == 401
        wrong = await scrape(base, "not-the-metrics-token-at-all")
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_token"
        names = [new_username() for _ in range(6)]
        await asyncio.gather(*(register(base, name) for name in names))
        # each on its own connection, at once: both workers take some
        logins = await asyncio.gather(*(raw_login(base, name) for name in names * 2))
        refreshes = []
        for tokens in logins:
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                refreshes.append(
                    await client.post(
                        "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
                    )
                )
        assert [r.status_code for r in refreshes] == [200] * 12
        bearer = {"Authorization": f"Bearer {refreshes[0].json()['access_token']}"}
        for _ in range(3):
            async with httpx.AsyncClient(base_url=base, timeout=10) as client:
                assert (await client.get("/api/me", headers=bearer)).status_code == 200
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            wrong_login = await client.post(
                "/auth/login", json={"username": names[0], "password": "wrong password"}
            )
        assert wrong_login.status_code == 401
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            logout = await client.post("/auth/logout", headers=bearer)
        assert logout.status_code == 204
        await asyncio.sleep(1.6)  # every worker pushes its counts once a second
        texts = [(await scrape(base)).text for _ in range(4)]  # whichever worker answers
        counters = {path.name.split("_")[1] for path in metrics_dir.glob("counter_*.db")}
        assert len(counters) == 2, counters  # both workers counted
        for text in texts:
            assert sample(text, "jwt_refresh_logins_total", outcome="ok") == 12
            assert sample(text, "jwt_refresh_logins_total", outcome="failed") == 1
            assert sample(text, "jwt_refresh_refreshes_total", outcome="ok") == 12
            assert (
                sample(
                    text,
                    "jwt_refresh_request_duration_seconds_count",
                    method="POST",
                    route="jwt_refresh_api.auth.refresh",
                    status="200",
                )
                == 12
            )
            checks = sample(text, "jwt_refresh_bearer_cache_total", result="hit")
            checks += sample(text, "jwt_refresh_bearer_cache_total", result="miss")
            assert checks == 4  # three /api/me and the logout
            assert 1 <= sample(text, "jwt_refresh_bearer_cache_total", result="miss") <= 2
            assert sample(text, "jwt_refresh_revocations_total", kind="session") == 1
            outcome = {"outcome": "acknowledged"}
            assert sample(text, "jwt_refresh_revocation_publishes_total", **outcome) == 1
        response = await scrape(base)
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["cache-control"] == "no-store"


async def test_no_metrics_token_no_metrics_route() -> None:
    with live_server(workers=1) as base:
        assert (await scrape(base)).status_code == 404
        assert (await scrape(base, None)).json()["error"] == "not_found"


async def test_json_logs_carry_the_request_id_and_no_secrets(tmp_path: Path) -> None:
    name = new_username()
    with live_server(workers=2, workdir=tmp_path, LOG_FORMAT="json") as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            await client.post("/auth/register", json={"username": name, "password": PASSWORD})
            login = await client.post(
                "/auth/login",
                json={"username": name, "password": PASSWORD},
                headers={"X-Request-ID": "trace-42"},
            )
            assert login.headers["x-request-id"] == "trace-42"
            tokens = login.json()
            me = await client.get(
                "/api/me", headers={"Authorization": f"Bearer {tokens['access_token']}"}
            )
            generated = me.headers["x-request-id"]
    log = (tmp_path / "server.log").read_text()
    ours = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [entry for entry in ours if entry["logger"] == "app.access"]
    assert {"time", "level", "logger", "message", "request_id"} <= set(access[0])
    by_id = {entry["request_id"]: entry for entry in access}
    assert by_id["trace-42"]["path"] == "/auth/login" and by_id["trace-42"]["status"] == 200
    assert by_id[generated]["path"] == "/api/me"
    for secret in (PASSWORD, tokens["access_token"], tokens["refresh_token"]):
        assert secret not in log


@pytest.mark.parametrize("workers", [2])
async def test_an_unreachable_dependency_is_named_once_at_start(
    tmp_path: Path, workers: int
) -> None:
    pg_port, redis_port = free_port(), free_port()
    with live_server(
        workers=workers,
        workdir=tmp_path,
        DATABASE_URL=f"postgresql://postgres@127.0.0.1:{pg_port}/nothing",
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
    ) as base:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            health = await client.get("/health")
        assert health.status_code == 503
        assert health.json()["error_description"] == "PostgreSQL and Redis are down"
        assert time.monotonic() - started < 8
    log = (tmp_path / "server.log").read_text()
    postgres = [line for line in log.splitlines() if f"PostgreSQL at 127.0.0.1:{pg_port}" in line]
    redis = [line for line in log.splitlines() if f"Redis at 127.0.0.1:{redis_port}" in line]
    assert len(postgres) == 1 and "does not answer" in postgres[0], log
    assert len(redis) == 1 and "does not answer" in redis[0], log
    assert "Traceback" not in log
