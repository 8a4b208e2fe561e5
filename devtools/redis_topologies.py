"""Redis Cluster and Redis Sentinel set-ups of our own, from the installed `redis-server` and
`redis-cli` binaries, on free loopback ports, no persistence (no containers).

`local_redis_cluster()`: N masters (`--cluster-enabled yes`) joined by
`redis-cli --cluster create`, ready once every node reports `cluster_state:ok`.
`local_sentinel()`: a master, a replica and three Sentinels (`--sentinel`) monitoring it under
one name, ready once the Sentinels agree on the master and see the replica.
Each node is a `LocalRedis`, so the tests can stop, freeze and restart one of them.
"""

from __future__ import annotations

import random
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from devtools import LIVE, ServerError, free_port
from devtools.redis import LocalRedis

READY_TIMEOUT = 30.0
SENTINEL_MASTER = "jwt-refresh-api"


def _cli(port: int, *args: str, timeout: float = 10.0) -> str:
    binary = shutil.which("redis-cli")
    if binary is None:
        raise ServerError("redis-cli is not installed (Debian/Ubuntu: apt-get install redis-tools)")
    result = subprocess.run(
        [binary, "-h", "127.0.0.1", "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if result.returncode != 0:
        raise ServerError(f"redis-cli {' '.join(args)} on {port}: {result.stderr or result.stdout}")
    return result.stdout


def cluster_port(taken: set[int]) -> int:
    """A free port whose cluster bus port (10000 above it) is free too, and neither one among
    the ports `taken` by the other nodes (added to it): a node needs both, below 55536."""
    for _ in range(200):
        port = random.randint(20000, 45000)  # noqa: S311 - choosing a port, not a secret
        pair = {port, port + 10000}
        if not pair & taken and all(_free(candidate) for candidate in pair):
            taken |= pair
            return port
    raise ServerError("no free pair of ports for a Redis Cluster node")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait(ready: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        with suppress(ServerError, subprocess.TimeoutExpired):
            if ready():
                return
        if time.monotonic() > deadline:
            raise ServerError(f"{what} did not become ready in {READY_TIMEOUT:.0f} s")
        time.sleep(0.1)


class LocalRedisCluster:
    """A Redis Cluster of `masters` masters (and `replicas` replicas per master)."""

    def __init__(self, masters: int = 3, replicas: int = 0):
        taken: set[int] = set()
        self.nodes = [
            LocalRedis.throwaway(
                cluster_port(taken),
                args=[
                    "--cluster-enabled",
                    "yes",
                    "--cluster-config-file",
                    "nodes.conf",
                    "--cluster-node-timeout",
                    "2000",
                ],
            )
            for _ in range(masters * (1 + replicas))
        ]
        self.replicas = replicas
        LIVE.add(self)

    @property
    def addresses(self) -> list[str]:
        return [f"{node.host}:{node.port}" for node in self.nodes]

    @property
    def startup_nodes(self) -> str:
        """`host:port,host:port,...`: the form of REDIS_CLUSTER_NODES."""
        return ",".join(self.addresses)

    def start(self) -> None:
        for node in self.nodes:
            node.start()
        _cli(
            self.nodes[0].port,
            "--cluster",
            "create",
            *self.addresses,
            "--cluster-replicas",
            str(self.replicas),
            "--cluster-yes",
            timeout=60,
        )
        _wait(self._ok, "the Redis Cluster")

    def _ok(self) -> bool:
        for node in self.nodes:
            if not node.running:
                continue
            if "cluster_state:ok" not in _cli(node.port, "cluster", "info"):
                return False
        return True

    def node_of_slot(self, slot: int) -> LocalRedis:
        """The master serving hash slot `slot`, as the cluster says now."""
        for node in self.nodes:
            if not node.running:
                continue
            for line in _cli(node.port, "cluster", "nodes").splitlines():
                fields = line.split()
                if "master" not in fields[2] or "fail" in fields[2]:
                    continue
                for span in fields[8:]:
                    low, _, high = span.partition("-")
                    if low.isdigit() and int(low) <= slot <= int(high or low):
                        port = int(fields[1].split("@")[0].rsplit(":", 1)[1])
                        return next(n for n in self.nodes if n.port == port)
            break
        raise ServerError(f"no master serves slot {slot}")

    def cleanup(self) -> None:
        for node in self.nodes:
            with suppress(Exception):
                node.cleanup()
        LIVE.discard(self)


class LocalSentinel:
    """A master, a replica, and `sentinels` Sentinels monitoring it as `SENTINEL_MASTER`."""

    def __init__(self, sentinels: int = 3):
        self.master = LocalRedis.throwaway()
        self.replica = LocalRedis.throwaway(
            args=["--replicaof", "127.0.0.1", str(self.master.port)]
        )
        self.root = Path(tempfile.mkdtemp(prefix="jwt-sentinel-"))
        self.ports = [free_port() for _ in range(sentinels)]
        self.processes: list[subprocess.Popen[bytes]] = []
        LIVE.add(self)

    @property
    def sentinels(self) -> str:
        """`host:port,...`: the form of REDIS_SENTINELS."""
        return ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not installed")
        self.master.start()
        self.replica.start()
        quorum = len(self.ports) // 2 + 1
        for port in self.ports:
            config = self.root / f"sentinel-{port}.conf"  # a Sentinel rewrites its own file
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.root}\n"
                f"sentinel monitor {SENTINEL_MASTER} 127.0.0.1 {self.master.port} {quorum}\n"
                f"sentinel down-after-milliseconds {SENTINEL_MASTER} 1000\n"
                f"sentinel failover-timeout {SENTINEL_MASTER} 5000\n"
            )
            with open(self.root / f"sentinel-{port}.log", "ab") as log:
                self.processes.append(
                    subprocess.Popen(
                        [binary, str(config), "--sentinel"],
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    )
                )
        _wait(self._ready, "the Sentinels")

    def _ready(self) -> bool:
        for port in self.ports:
            master = _cli(port, "sentinel", "master", SENTINEL_MASTER).split()
            info = dict(zip(master[::2], master[1::2], strict=False))
            if (
                info.get("num-slaves") != "1"
                or int(info.get("num-other-sentinels", "0")) < len(self.ports) - 1
            ):
                return False
        return True

    def master_port(self) -> int:
        """The port of the master the Sentinels name now."""
        address = _cli(self.ports[0], "sentinel", "get-master-addr-by-name", SENTINEL_MASTER)
        return int(address.split()[1])

    def cleanup(self) -> None:
        for process in self.processes:
            with suppress(Exception):
                process.terminate()
                process.wait(timeout=10)
        self.processes.clear()
        for server in (self.master, self.replica):
            with suppress(Exception):
                server.cleanup()
        shutil.rmtree(self.root, ignore_errors=True)
        LIVE.discard(self)


@contextmanager
def local_redis_cluster(masters: int = 3, replicas: int = 0) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(masters, replicas)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


@contextmanager
def local_sentinel(sentinels: int = 3) -> Iterator[LocalSentinel]:
    setup = LocalSentinel(sentinels)
    try:
        setup.start()
        yield setup
    finally:
        setup.cleanup()
