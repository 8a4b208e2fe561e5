"""make bench, second part: what the revocation state costs as it grows (issue 12).

On a throwaway Redis of its own (from the installed redis-server), never the user's:

- a worker's start-up load of its copy (time, and the copy's memory, traced) with 10k, 100k
  and 1M live revocation marks, beside 2M unrelated keys (standing for used-refresh marks and
  everything else a Redis holds);
- a revocation's latency (until every live worker acknowledged it) and Redis's output bytes
  per revocation, with 2, 8 and 32 workers (feeds in this process, each with its own
  connections, as a worker has).

Prints one table each; nothing is timed against a limit.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from redis.asyncio import Redis  # noqa: E402

from app.config import Settings  # noqa: E402
from app.revocation import Revocations  # noqa: E402
from app.revocation.feed import RevocationFeed  # noqa: E402
from app.revocation.mirror import RevocationMirror  # noqa: E402
from app.revocation.rebuild import Rebuilder  # noqa: E402
from app.revocation.store import SHARDS, Entry, RevocationStore  # noqa: E402
from devtools.redis import LocalRedis  # noqa: E402

PREFIX = "jwt-refresh-api-bench-scale:"
OTHER_KEYS = 2_000_000


def settings(url: str) -> Settings:
    return Settings(jwt_secret="x" * 32, redis_url=url, redis_key_prefix=PREFIX)


def store_of(client: Redis, s: Settings) -> RevocationStore:
    return RevocationStore(
        client, prefix=s.redis_key_prefix, access_ttl=s.access_token_ttl, clock_skew=s.clock_skew
    )


async def fill(store: RevocationStore, marks: int) -> None:
    """`marks` revoked sessions, written as revocations write them (spread over the live
    buckets as a steady stream of logouts would), and every shard whole."""
    await store.write([], whole=range(SHARDS), replicate=False)
    batch = 20_000
    for start in range(0, marks, batch):
        count = min(batch, marks - start)
        # a steady stream over the last revocation lifetime: remaining TTLs spread evenly
        entries = [
            Entry("s", uuid.uuid4().hex, 1, 1 + (start + i) * store.revoked_ttl // marks)
            for i in range(count)
        ]
        await store.write(entries, replicate=False)


async def load_cost(url: str, marks: int) -> tuple[float, float, int]:
    """(seconds to load a copy, MiB of the loaded copy, entries) with `marks` marks."""
    s = settings(url)
    client = Redis.from_url(url, decode_responses=True)
    try:
        store = store_of(client, s)
        await fill(store, marks)
        timings = []
        for _ in range(3):
            mirror = RevocationMirror(store.revoked_ttl)
            started = time.perf_counter()
            await _load(store, mirror)
            timings.append(time.perf_counter() - started)
            del mirror
            gc.collect()
        mirror = RevocationMirror(store.revoked_ttl)
        snapshots = await store.snapshots()
        tracemalloc.start()
        for snapshot in snapshots:
            for bucket, fingerprints in snapshot.sessions.items():
                mirror.add_sessions(bucket, fingerprints)
        size, _ = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return statistics.median(timings), size / 2**20, len(mirror)
    finally:
        await client.aclose()


async def _load(store: RevocationStore, mirror: RevocationMirror) -> None:
    """What a worker's feed does on (re)connection (RevocationFeed._load_snapshot)."""
    for snapshot in await store.snapshots():
        for bucket, fingerprints in snapshot.sessions.items():
            mirror.add_sessions(bucket, fingerprints)
        for bucket, versions in snapshot.versions.items():
            mirror.add_versions(bucket, versions)
        mirror.set_not_before(snapshot.not_before)


class NoDatabase:
    """The feeds here never rebuild (every shard is whole): any query is a bug."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no database in this bench ({name})")


async def fan_out(url: str, workers: int, revocations: int) -> tuple[float, float, float, int]:
    """(median ms, p90 ms, Redis output KiB per revocation, unacknowledged) with `workers`."""
    s = settings(url)
    client = Redis.from_url(url, decode_responses=True)
    feeds = []
    try:
        first_store = store_of(client, s)
        await first_store.write([], whole=range(SHARDS), replicate=False)
        for _ in range(workers):
            store = store_of(client, s)
            mirror = RevocationMirror(store.revoked_ttl)
            rebuild = Rebuilder(NoDatabase(), store)  # type: ignore[arg-type]
            feed = RevocationFeed(s, store, mirror, rebuild)
            feed.start()
            feeds.append(feed)
        deadline = time.monotonic() + 30
        while not all(f.mirror.trusted for f in feeds):
            if time.monotonic() > deadline:
                raise SystemExit("the feeds did not come up")
            await asyncio.sleep(0.05)
        await asyncio.sleep(1.0)  # every worker registered
        asker = feeds[0]
        revoker = Revocations(asker.store, asker.mirror, asker, asker.rebuild)

        async def output() -> int:
            return int((await client.info("stats"))["total_net_output_bytes"])

        idle_from, idle_start = await output(), time.monotonic()
        await asyncio.sleep(3.0)
        idle_rate = (await output() - idle_from) / (time.monotonic() - idle_start)
        latencies = []
        unacknowledged = 0
        started_bytes, started = await output(), time.monotonic()
        for _ in range(revocations):
            t = time.perf_counter()
            async with asyncio.timeout(10):
                await revoker.revoke([uuid.uuid4().hex])
            latencies.append((time.perf_counter() - t) * 1000)
            unacknowledged += latencies[-1] > 1500
        spent = time.monotonic() - started
        per_revocation = (await output() - started_bytes - idle_rate * spent) / revocations
        latencies.sort()
        p90 = latencies[int(len(latencies) * 0.9) - 1]
        return statistics.median(latencies), p90, per_revocation / 1024, unacknowledged
    finally:
        await asyncio.gather(*(f.stop() for f in feeds), return_exceptions=True)
        await client.aclose()


async def main_async(args: argparse.Namespace) -> None:
    print()
    print(
        f"A worker's copy of the revocations, loaded at start-up, beside {OTHER_KEYS:,} other"
        " keys (medians of 3 loads)"
    )
    print(f"{'marks':>10} {'load s':>8} {'copy MiB':>9} {'entries':>10}")
    for marks in args.marks:
        redis = LocalRedis.throwaway(args=["--enable-debug-command", "yes"])
        redis.start()
        try:
            populate = Redis.from_url(redis.url())
            await populate.execute_command("DEBUG", "POPULATE", OTHER_KEYS, f"{PREFIX}used:", 40)
            await populate.aclose()
            seconds, mib, entries = await load_cost(redis.url(), marks)
            print(f"{marks:>10,} {seconds:>8.3f} {mib:>9.1f} {entries:>10,}")
        finally:
            redis.cleanup()
    print()
    print(
        f"A revocation (one session) until every live worker acknowledged it,"
        f" {args.revocations} in a row"
    )
    print(f"{'workers':>8} {'p50 ms':>8} {'p90 ms':>8} {'output KiB/rev':>15} {'timed out':>10}")
    for workers in args.workers:
        redis = LocalRedis.throwaway()
        redis.start()
        try:
            p50, p90, kib, late = await fan_out(redis.url(), workers, args.revocations)
            print(f"{workers:>8} {p50:>8.2f} {p90:>8.2f} {kib:>15.2f} {late:>10}")
        finally:
            redis.cleanup()


def numbers(text: str) -> list[int]:
    return [int(value) for value in text.split(",")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--marks",
        type=lambda t: [int(v) for v in t.split(",")],
        default=[10_000, 100_000, 1_000_000],
    )
    parser.add_argument(
        "--workers", type=lambda t: [int(v) for v in t.split(",")], default=[2, 8, 32]
    )
    parser.add_argument("--revocations", type=int, default=40)
    asyncio.run(main_async(parser.parse_args()))


if __name__ == "__main__":
    main()
