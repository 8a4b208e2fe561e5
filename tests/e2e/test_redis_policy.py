"""A Redis that may evict keys could drop revocation marks while its "state is whole" marker
stays: the service refuses to start on one, and says so once where it can't check."""

from __future__ import annotations

import httpx
import pytest
from redis import Redis
from redis.exceptions import RedisError

from devtools.redis import local_redis
from tests.support import live_server

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("policy", ["allkeys-lru", "volatile-ttl", "allkeys-random"])
def test_an_evicting_redis_stops_start_up_with_a_clear_line(database: str, policy: str) -> None:
    with local_redis("--maxmemory-policy", policy) as redis:
        with pytest.raises(RuntimeError) as failed:
            with live_server(workers=1, REDIS_URL=redis.url()):
                pass
    log = str(failed.value)
    assert "server exited early" in log
    assert f"Redis maxmemory-policy is '{policy}'" in log
    assert "noeviction" in log


def test_noeviction_starts(database: str) -> None:
    with local_redis("--maxmemory-policy", "noeviction") as redis:
        with live_server(workers=1, REDIS_URL=redis.url()) as base:
            assert base.startswith("http://127.0.0.1:")


def test_where_config_is_disabled_it_still_starts(database: str) -> None:
    """Managed Redis often renames CONFIG away: the service can't check (it logs a warning
    saying so) and runs."""
    with local_redis("--rename-command", "CONFIG", "") as redis:
        with live_server(workers=1, REDIS_URL=redis.url()) as base:
            assert httpx.get(base + "/health", timeout=5).status_code == 200


def test_a_full_redis_is_a_503_never_a_500(database: str) -> None:
    """Under noeviction a full Redis refuses writes: routes that write answer 503 with
    Retry-After, nothing is spent, and a retry once there is room again completes."""
    with (
        local_redis("--maxmemory-policy", "noeviction") as redis,
        live_server(workers=1, REDIS_URL=redis.url()) as base,
        httpx.Client(base_url=base, timeout=10) as http,
        Redis.from_url(redis.url()) as admin,
    ):
        credentials = {"username": "full_redis", "password": "correct horse battery"}
        assert http.post("/auth/register", json=credentials).status_code == 201
        tokens = http.post("/auth/login", json=credentials).json()
        bearer = {"Authorization": f"Bearer {tokens['access_token']}"}

        def fill() -> None:  # full: its limit below what it holds already
            used = int(admin.info("memory")["used_memory"])
            admin.config_set("maxmemory", str(used // 2))
            with pytest.raises(RedisError, match="maxmemory"):
                admin.set("one more key", "x")

        def assert_unavailable(what: str, answer: httpx.Response) -> None:
            assert answer.status_code == 503, (what, answer.status_code, answer.text)
            assert answer.json()["error"] == "temporarily_unavailable", what
            assert int(answer.headers["retry-after"]) > 0, what

        fill()
        assert_unavailable("login", http.post("/auth/login", json=credentials))
        refresh = {"refresh_token": tokens["refresh_token"]}
        assert_unavailable("refresh", http.post("/auth/refresh", json=refresh))
        assert_unavailable("logout", http.post("/auth/logout", headers=bearer))
        admin.config_set("maxmemory", "0")
        # the logout ended the session in PostgreSQL first: its retry completes it
        assert http.post("/auth/logout", headers=bearer).status_code == 204
        assert http.get("/api/me", headers=bearer).status_code == 401
