"""Scale-out (issue 12) over real HTTP: two hosts (`sanic app.main --workers 2` on two ports)
share one PostgreSQL and one Redis deployment, a 3-master Redis Cluster or a Sentinel set-up
(master, replica, three Sentinels), both started from the installed `redis-server` on free
ports. The core flows, a logout through one host refused on the very next request through the
other, a refresh race split over both hosts, and a failover: never a 200 for a revoked token,
and recovery without restarting the hosts."""

from __future__ import annotations

import asyncio
import random
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from redis.crc import key_slot

from app.revocation.store import shard_of
from devtools.redis_topologies import LocalRedisCluster, LocalSentinel
from tests import support
from tests.support import live_server
from tests.support.topologies import redis_deployment

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
TIMEOUT = httpx.Timeout(10.0)
# each user registers from an address of its own (X-Forwarded-For, one proxy trusted): the
# per-address registration limit (20 an hour) is for clients, not for this module's users
BEHIND_PROXY = {"PROXIES_COUNT": "1"}


@dataclass
class Deployment:
    kind: str
    redis: LocalRedisCluster | LocalSentinel
    env: dict[str, str]
    hosts: tuple[str, str]
    logs: Path

    def log_text(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs.glob("*/server.log"))


@pytest.fixture(scope="module", params=["cluster", "sentinel"])
def deployment(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    logs = tmp_path_factory.mktemp(f"scale-out-{request.param}")
    for host in ("first", "second"):
        (logs / host).mkdir()
    # REDIS_URL still names the test's single Redis: the cluster or Sentinel variable wins
    with (
        redis_deployment(request.param) as (redis, env),
        live_server(workers=2, workdir=logs / "first", **env, **BEHIND_PROXY) as first,
        live_server(workers=2, workdir=logs / "second", **env, **BEHIND_PROXY) as second,
    ):
        assert redis is not None
        yield Deployment(request.param, redis, env, (first, second), logs)


_names = iter(range(10**6))


def name() -> str:
    return f"scale{next(_names)}_{random.randrange(10**6)}"  # noqa: S311 - a name


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def status_of(base: str, token: str) -> int:
    """GET /api/me on a new connection: any worker of that host."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as fresh:
        return (await fresh.get(f"{base}/api/me", headers=bearer(token))).status_code


async def new_user(base: str) -> tuple[str, dict[str, str]]:
    username = name()
    address = {"X-Forwarded-For": f"10.12.{random.randrange(256)}.{random.randrange(256)}"}  # noqa: S311
    async with httpx.AsyncClient(timeout=TIMEOUT, headers=address) as http:
        registered = await http.post(
            f"{base}/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        login = await http.post(
            f"{base}/auth/login", json={"username": username, "password": PASSWORD}
        )
        assert login.status_code == 200, login.text
        return username, login.json()


async def test_the_core_flows_across_both_hosts(deployment: Deployment) -> None:
    first, second = deployment.hosts
    username, tokens = await new_user(first)
    access = tokens["access_token"]
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        me = await http.get(f"{second}/api/me", headers=bearer(access))
        assert me.status_code == 200 and me.json()["username"] == username
        note = await http.post(
            f"{second}/api/notes", headers=bearer(access), json={"title": "t", "body": "hi"}
        )
        assert note.status_code == 201, note.text
        listed = await http.get(f"{first}/api/notes", headers=bearer(access))
        assert [n["body"] for n in listed.json()["notes"]] == ["hi"]
        refreshed = await http.post(
            f"{second}/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 200, refreshed.text
        fresh = refreshed.json()
        sessions = await http.get(f"{first}/auth/sessions", headers=bearer(fresh["access_token"]))
        assert sessions.status_code == 200
        assert [s["id"] for s in sessions.json()["sessions"]] == [tokens["session_id"]]
        # a password change ends the session everywhere and starts a new one
        changed = await http.post(
            f"{first}/auth/password",
            headers=bearer(fresh["access_token"]),
            json={"current_password": PASSWORD, "new_password": PASSWORD + " again"},
        )
        assert changed.status_code == 200, changed.text
        for base in (first, second):
            assert await status_of(base, fresh["access_token"]) == 401
            assert await status_of(base, changed.json()["access_token"]) == 200
        # log out everywhere, then the limiter: wrong passwords in parallel, split over hosts
        out = await http.post(
            f"{second}/auth/logout-all", headers=bearer(changed.json()["access_token"])
        )
        assert out.status_code == 204
        for base in (first, second):
            assert await status_of(base, changed.json()["access_token"]) == 401
        wrong = await asyncio.gather(
            *(
                http.post(
                    f"{deployment.hosts[n % 2]}/auth/login",
                    json={"username": username, "password": "wrong password"},
                )
                for n in range(30)
            )
        )
        codes = Counter(response.status_code for response in wrong)
        assert set(codes) <= {401, 429} and codes[401] <= 10, codes


async def test_a_logout_through_one_host_is_refused_through_the_other_at_once(
    deployment: Deployment,
) -> None:
    first, second = deployment.hosts
    took = []
    for round_ in range(12):
        here, there = (first, second) if round_ % 2 else (second, first)
        _, tokens = await new_user(here)
        access = tokens["access_token"]
        assert await status_of(there, access) == 200
        assert await status_of(here, access) == 200
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            started = time.monotonic()
            out = await http.post(f"{here}/auth/logout", headers=bearer(access))
            took.append(time.monotonic() - started)
        assert out.status_code == 204, out.text
        for base in (there, here, there, there):  # the very next request, wherever it lands
            assert await status_of(base, access) == 401, (round_, base)
    took.sort()
    print(
        f"\n{deployment.kind}: logout median {took[6] * 1000:.0f} ms, max {took[-1] * 1000:.0f} ms"
    )
    assert took[6] < 1.0, took  # acknowledged by every live worker, not timed out


async def test_a_refresh_race_split_over_both_hosts_has_one_successor(
    deployment: Deployment,
) -> None:
    for round_ in range(4):
        _, tokens = await new_user(deployment.hosts[round_ % 2])

        async def refresh(n: int, token: str, spread: float) -> httpx.Response:
            await asyncio.sleep(random.random() * spread)  # noqa: S311 - timing
            async with httpx.AsyncClient(timeout=TIMEOUT) as fresh:
                return await fresh.post(
                    f"{deployment.hosts[n % 2]}/auth/refresh", json={"refresh_token": token}
                )

        spread = 0.01 * round_  # all at once, then up to 30 ms apart
        answers = await asyncio.gather(
            *(refresh(n, tokens["refresh_token"], spread) for n in range(8))
        )
        assert Counter(a.status_code for a in answers) == {200: 8}, [a.text for a in answers]
        assert len({a.json()["refresh_token"] for a in answers}) == 1, round_
        successor = answers[0].json()
        for base in deployment.hosts:
            assert await status_of(base, successor["access_token"]) == 200


async def watch(hosts: tuple[str, str], revoked: str, seconds: float) -> Counter[int]:
    """The answers for a revoked token on both hosts for `seconds`: never a 200."""
    seen: Counter[int] = Counter()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for base in hosts:
            status = await status_of(base, revoked)
            assert status != 200, f"a revoked token was accepted by {base}: {seen}"
            seen[status] += 1
        await asyncio.sleep(0.05)
    return seen


async def recovered(hosts: tuple[str, str], good: str, revoked: str, seconds: float = 40) -> None:
    """Until both hosts serve `good` again, never accepting `revoked`."""
    deadline = time.monotonic() + seconds
    while True:
        statuses = [await status_of(base, good) for base in hosts]
        for base in hosts:
            assert await status_of(base, revoked) != 200
        if statuses == [200, 200]:
            break
        assert time.monotonic() < deadline, f"not recovered: {statuses}"
        await asyncio.sleep(0.2)
    for base in hosts * 2:
        assert await status_of(base, revoked) == 401
        assert await status_of(base, good) == 200


async def test_a_failover_never_accepts_a_revoked_token_and_recovers(
    deployment: Deployment,
) -> None:
    first, second = deployment.hosts
    _, revoked = await new_user(first)
    _, good = await new_user(second)
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        out = await http.post(f"{second}/auth/logout", headers=bearer(revoked["access_token"]))
        assert out.status_code == 204
    if isinstance(deployment.redis, LocalRedisCluster):
        # the master holding the revoked session's mark goes down, and comes back empty
        prefix = support.REDIS_PREFIX
        slot = key_slot(f"{prefix}{{rv{shard_of(revoked['session_id'])}}}".encode())
        node = deployment.redis.node_of_slot(slot)
        node.stop()
        seen = await watch(deployment.hosts, revoked["access_token"], 6.0)
        assert seen[503] > 0, seen  # the cluster is down: nobody can know
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            health = await http.get(f"{first}/health")
        assert (health.status_code, health.json()["redis"]) == (503, "down"), health.text
        node.start()
    else:
        sentinel = deployment.redis
        old = sentinel.master
        old.stop()
        deadline = time.monotonic() + 30
        while sentinel.master_port() == old.port:
            assert time.monotonic() < deadline, "no failover"
            await watch(deployment.hosts, revoked["access_token"], 0.5)
        await watch(deployment.hosts, revoked["access_token"], 2.0)
        old.start()  # the Sentinels make it a replica of the new master
    await recovered(deployment.hosts, good["access_token"], revoked["access_token"])
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        for base in deployment.hosts:
            health = await http.get(f"{base}/health")
            assert health.status_code == 200, health.text
    # and a revocation after the failover works everywhere at once
    _, later = await new_user(first)
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        while (
            out := await http.post(f"{first}/auth/logout", headers=bearer(later["access_token"]))
        ).status_code == 503:
            assert time.monotonic() < deadline, out.text  # a replica to confirm it, soon
            await asyncio.sleep(0.5)
        assert out.status_code == 204, out.text
    for base in (second, first):
        assert await status_of(base, later["access_token"]) == 401


def _cluster_cli(port: int, *args: str) -> str:
    result = subprocess.run(
        ["redis-cli", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    return result.stdout.strip()


def move_slot(cluster: LocalRedisCluster, slot: int) -> tuple[int, int]:
    """Move hash slot `slot` and its keys to another master (as `redis-cli --cluster reshard`
    does, one slot): (the port it left, the port it went to)."""
    source = cluster.node_of_slot(slot)
    target = next(n for n in cluster.nodes if n.running and n.port != source.port)
    source_id = _cluster_cli(source.port, "cluster", "myid")
    target_id = _cluster_cli(target.port, "cluster", "myid")
    _cluster_cli(target.port, "cluster", "setslot", str(slot), "importing", source_id)
    _cluster_cli(source.port, "cluster", "setslot", str(slot), "migrating", target_id)
    while keys := _cluster_cli(source.port, "cluster", "getkeysinslot", str(slot), "100").split():
        _cluster_cli(
            source.port, "migrate", "127.0.0.1", str(target.port), "", "0", "5000", "keys", *keys
        )
    for node in cluster.nodes:
        if node.running:
            _cluster_cli(node.port, "cluster", "setslot", str(slot), "node", target_id)
    return source.port, target.port


@pytest.mark.parametrize("deployment", ["cluster"], indirect=True)  # Sentinel: no slots
async def test_the_feeds_slot_moving_to_another_master_is_followed(
    deployment: Deployment,
) -> None:
    """Redis ends the feed's sharded subscriptions when their slot moves (`sunsubscribe`):
    every worker distrusts its copy, resubscribes on the slot's new master and reloads; no
    revoked token is accepted meanwhile, and afterwards a logout is acknowledged by every
    worker again (fast) and refused everywhere at once."""
    assert isinstance(deployment.redis, LocalRedisCluster)
    first, second = deployment.hosts
    _, revoked = await new_user(first)
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        out = await http.post(f"{first}/auth/logout", headers=bearer(revoked["access_token"]))
        assert out.status_code == 204
    slot = key_slot(f"{support.REDIS_PREFIX}{{feed}}".encode())
    left, went = move_slot(deployment.redis, slot)
    assert deployment.redis.node_of_slot(slot).port == went != left
    await watch(deployment.hosts, revoked["access_token"], 3.0)
    took = []
    for round_ in range(6):
        here, there = (first, second) if round_ % 2 else (second, first)
        _, tokens = await new_user(here)
        assert await status_of(there, tokens["access_token"]) == 200
        async with httpx.AsyncClient(timeout=TIMEOUT) as http:
            started = time.monotonic()
            out = await http.post(f"{here}/auth/logout", headers=bearer(tokens["access_token"]))
            took.append(time.monotonic() - started)
        assert out.status_code == 204, out.text
        for base in (there, here):
            assert await status_of(base, tokens["access_token"]) == 401
    took.sort()
    assert took[3] < 1.0, took  # every worker acknowledges again: the feeds followed the slot
    # and they did notice: Redis ended the subscriptions on the slot's old master (a worker
    # that was reconnecting at that moment subscribes on the new one straight away)
    ended = deployment.log_text().count("Redis ended the subscription to")
    assert ended >= 1, ended
