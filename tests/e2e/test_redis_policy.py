"""A Redis that may evict keys could drop revocation marks while its "state is whole" marker
stays: the service refuses to start on one, and says so once where it can't check."""

from __future__ import annotations

import httpx
import pytest

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
