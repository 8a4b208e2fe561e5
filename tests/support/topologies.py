"""The Redis deployments a test server can run on: the test's single Redis, a local 3-master
Redis Cluster, or a Sentinel set-up (devtools.redis_topologies), as the environment of
`live_server` names them (REDIS_CLUSTER_NODES, REDIS_SENTINELS + REDIS_SENTINEL_MASTER)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from devtools.redis_topologies import (
    SENTINEL_MASTER,
    LocalRedisCluster,
    LocalSentinel,
    local_redis_cluster,
    local_sentinel,
)

KINDS = ("redis", "cluster", "sentinel")


@contextmanager
def redis_deployment(
    kind: str,
) -> Iterator[tuple[LocalRedisCluster | LocalSentinel | None, dict[str, str]]]:
    """(the deployment, the server environment that names it); `redis`: the test's own."""
    if kind == "redis":
        yield None, {}
    elif kind == "cluster":
        with local_redis_cluster() as cluster:
            yield cluster, {"REDIS_CLUSTER_NODES": cluster.startup_nodes}
    elif kind == "sentinel":
        with local_sentinel() as sentinel:
            yield (
                sentinel,
                {
                    "REDIS_SENTINELS": sentinel.sentinels,
                    "REDIS_SENTINEL_MASTER": SENTINEL_MASTER,
                },
            )
    else:
        raise ValueError(f"no Redis deployment {kind!r}")
