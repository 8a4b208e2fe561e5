"""The Redis Cluster and Sentinel set-ups the scale-out tests run on (devtools.redis_topologies),
checked with redis-py's own cluster and sentinel clients: they start on free ports from the
installed binaries, serve, fail over, and are torn down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
import redis.exceptions
from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.sentinel import Sentinel

from devtools import answers
from devtools.redis_topologies import (
    SENTINEL_MASTER,
    LocalRedisCluster,
    LocalSentinel,
    local_redis_cluster,
    local_sentinel,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRedisCluster]:
    with local_redis_cluster() as running:
        yield running


def nodes(cluster: LocalRedisCluster) -> list[ClusterNode]:
    return [ClusterNode(node.host, node.port) for node in cluster.nodes]


async def test_a_three_master_cluster_serves_every_slot(cluster: LocalRedisCluster) -> None:
    client = RedisCluster(startup_nodes=nodes(cluster), decode_responses=True)
    try:
        for n in range(200):
            await client.set(f"probe:{n}", str(n), ex=60)
        assert [await client.get(f"probe:{n}") for n in range(0, 200, 37)] == [
            str(n) for n in range(0, 200, 37)
        ]
        masters = {cluster.node_of_slot(slot).port for slot in (0, 8000, 16383)}
        assert len(masters) == 3  # the slots are spread over the three masters
        # what the issue measured: a read across slots is refused by a cluster, so every
        # multi-key step of the service must keep its keys in one slot (hash tags)
        with pytest.raises(redis.exceptions.RedisClusterException):
            await client.mget("probe:1", "probe:2", "probe:3")
        assert await client.mget("{u1}:a", "{u1}:b") == [None, None]
    finally:
        await client.aclose()


async def test_a_sentinel_set_up_fails_over_to_its_replica() -> None:
    with local_sentinel() as setup:
        await _serves_then_fails_over(setup)
    assert not any(answers("127.0.0.1", port) for port in setup.ports)


async def _serves_then_fails_over(setup: LocalSentinel) -> None:
    sentinel = Sentinel([("127.0.0.1", port) for port in setup.ports], socket_timeout=1.0)
    master = sentinel.master_for(SENTINEL_MASTER, decode_responses=True, socket_timeout=1.0)
    try:
        await master.set("probe", "before", ex=60)
        assert await master.get("probe") == "before"
        assert setup.master_port() == setup.master.port
        setup.master.stop()
        deadline = time.monotonic() + 30
        while setup.master_port() != setup.replica.port:
            assert time.monotonic() < deadline, "no failover"
            await asyncio.sleep(0.2)
        while True:  # redis-py follows the new master
            try:
                await master.set("probe", "after", ex=60)
                break
            except (redis.exceptions.ConnectionError, redis.exceptions.ReadOnlyError):
                assert time.monotonic() < deadline, "the client did not follow the failover"
                await asyncio.sleep(0.2)
        assert await master.get("probe") == "after"
    finally:
        await master.aclose()


async def test_sharded_messages_of_one_slot_keep_the_order_redis_executed_them(
    cluster: LocalRedisCluster,
) -> None:
    """What the revocation feed's heartbeat rests on (app/revocation/feed.py): a message
    published on one channel after another publish returned, by another client, arrives
    after it, when both channels share a hash tag (one slot, one node). Plain PUBLISH in a
    cluster gives no such promise (the issue saw the PONG first in 5,322 of 20,000 trials)."""
    subscriber = RedisCluster(startup_nodes=nodes(cluster), decode_responses=True)
    first = RedisCluster(startup_nodes=nodes(cluster), decode_responses=True)
    second = RedisCluster(startup_nodes=nodes(cluster), decode_responses=True)
    await subscriber.initialize()  # the slot map: a sharded subscription is routed by it
    pubsub = subscriber.pubsub()
    try:
        await pubsub.ssubscribe("p:{feed}:revocations", "p:{feed}:beat:w1")
        for _ in range(2):  # the two confirmations
            assert await pubsub.get_sharded_message(timeout=2.0) is not None
        trials = 3000
        for n in range(trials):
            await first.spublish("p:{feed}:revocations", str(n))
            await second.spublish("p:{feed}:beat:w1", str(n))
        order = []
        while len(order) < 2 * trials:
            message = await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=2.0)
            assert message is not None, f"only {len(order)} of {2 * trials} messages"
            order.append((message["channel"].rsplit(":", 1)[-1], int(message["data"])))
        revocations_seen: set[int] = set()
        inversions = 0
        for channel, n in order:
            if channel == "revocations":
                revocations_seen.add(n)
            elif n not in revocations_seen:
                inversions += 1
        assert inversions == 0, f"{inversions} of {trials} beats came before their revocation"
    finally:
        await pubsub.aclose()
        for client in (subscriber, first, second):
            await client.aclose()
