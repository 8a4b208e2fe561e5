"""make bench: start the server on real PostgreSQL and Redis, load it with wrk, print one table.

Every figure comes from one run on this machine and is reported next to `GET /health/live`
measured in the same run, because absolute numbers on a shared machine mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from functools import partial
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.migrate import create_database, migrate  # noqa: E402
from bench.wrk import Result, wrk  # noqa: E402
from devtools.appserver import app_server  # noqa: E402

PASSWORD = "bench password 1"


def server(env: dict[str, str], workers: int) -> AbstractContextManager[str]:
    """The server as `make run` starts it, without access logs; ready once /health is ok."""
    return app_server(env, workers=workers, args=["--no-access-logs"], ready_path="/health")


def _address(index: int) -> dict[str, str]:
    # each user from an address of its own (PROXIES_COUNT=1): the per-address limits are for
    # clients, not for the bench's set-up
    return {"X-Forwarded-For": f"10.99.{index // 256}.{index % 256}"}


async def log_in_all(base: str, names: list[str]) -> list[dict[str, str]]:
    """A new session for each user, each from its own address: their token responses."""
    async with httpx.AsyncClient(base_url=base, timeout=60) as client:

        async def one(index: int, name: str) -> dict[str, str]:
            credentials = {"username": name, "password": PASSWORD}
            r = await client.post("/auth/login", json=credentials, headers=_address(index))
            r.raise_for_status()
            return r.json()  # type: ignore[no-any-return]

        return await asyncio.gather(*(one(i, name) for i, name in enumerate(names)))


async def prepare_users(base: str, count: int) -> tuple[str, list[str], list[str]]:
    """Register `count` users; the access token of the first, a refresh token for each, and
    their names."""
    run = secrets.token_hex(3)
    names = [f"bench_{run}_{i}" for i in range(count)]
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:

        async def register(index: int, name: str) -> None:
            credentials = {"username": name, "password": PASSWORD}
            r = await client.post("/auth/register", json=credentials, headers=_address(index))
            r.raise_for_status()

        await asyncio.gather(*(register(i, name) for i, name in enumerate(names)))
    responses = await log_in_all(base, names)
    return responses[0]["access_token"], [r["refresh_token"] for r in responses], names


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk phase")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout (a git worktree of an earlier commit, say): measure /api/me and"
        " refresh on both, interleaved, and print what this one costs against it",
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the comparison")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit(
            "wrk is not installed: apt-get install wrk (Debian/Ubuntu), brew install wrk (macOS)"
        )

    base_db = os.environ.get(
        "BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/jwt_refresh_bench"
    )
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
    asyncio.run(create_database(base_db))
    try:
        asyncio.run(migrate(base_db))
        if args.baseline is not None:
            compare(args, base_db, redis_url)
        else:
            run(args, base_db, redis_url)
    finally:
        asyncio.run(cleanup(base_db, redis_url))


async def cleanup(dsn: str, redis_url: str) -> None:
    """Leave nothing behind: drop the bench database and its Redis keys."""
    import asyncpg
    from redis.asyncio import Redis

    admin = await asyncpg.connect(urlunsplit(urlsplit(dsn)._replace(path="/postgres")))
    try:
        await admin.execute(
            f'DROP DATABASE IF EXISTS "{urlsplit(dsn).path.lstrip("/")}" WITH (FORCE)'
        )
    finally:
        await admin.close()
    redis = Redis.from_url(redis_url)
    keys = [k async for k in redis.scan_iter(match="jwt-refresh-api-bench:*", count=1000)]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def bench_env(base_db: str, redis_url: str, root: Path = ROOT) -> dict[str, str]:
    """The server's environment: metrics on (a METRICS_TOKEN), the access log off, as before."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JWT_", "DATABASE_", "REDIS_", "PROMETHEUS_"))
    }
    env.update(
        JWT_SECRET=secrets.token_urlsafe(48),
        DATABASE_URL=base_db,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=f"jwt-refresh-api-bench:{secrets.token_hex(3)}:",
        PYTHONPATH=str(root),
        PROXIES_COUNT="1",
        METRICS_TOKEN=secrets.token_urlsafe(24),
        ACCESS_LOG="false",
    )
    return env


def refresh_phase(name: str, base: str, tokens: list[str], seconds: int) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as tokens_file:
        tokens_file.write("\n".join(tokens) + "\n")
    try:
        return wrk(
            name,
            base + "/auth/refresh",
            seconds=seconds,
            connections=32,
            threads=32,
            script="refresh.lua",
            env={"BENCH_TOKENS": tokens_file.name},
        )
    finally:
        os.unlink(tokens_file.name)


def server_cpu(marker: str) -> float:
    """CPU seconds used so far by the server processes whose environment holds `marker`."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if marker.encode() not in Path(f"/proc/{entry}/environ").read_bytes():
                continue
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def per_request(marker: str, phase: Callable[[], Result]) -> tuple[Result, float]:
    """Run a wrk phase; its result and the server's CPU microseconds per request: far less
    noisy than throughput on a shared machine (a neighbour's load takes time, not CPU)."""
    before = server_cpu(marker)
    result = phase()
    return result, (server_cpu(marker) - before) / max(result.requests, 1) * 1e6


def compare(args: argparse.Namespace, base_db: str, redis_url: str) -> None:
    """This checkout against `--baseline`, one worker each, phases interleaved round by round
    so that the machine's noise falls on both alike: the medians of throughput and of the
    server's CPU time per request, and their ratios."""

    s, c = args.seconds, args.connections
    rows: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    envs = {
        "this": bench_env(base_db, redis_url),
        "baseline": bench_env(base_db, redis_url, args.baseline.resolve()),
    }
    with (
        server(envs["this"], workers=1) as this,
        server(envs["baseline"], workers=1) as baseline,
    ):
        bases = {"this": this, "baseline": baseline}
        prepared = {key: asyncio.run(prepare_users(base, 32)) for key, base in bases.items()}
        for key, base in bases.items():
            bearer = {"Authorization": f"Bearer {prepared[key][0]}"}
            wrk("warm-up", base + "/api/me", seconds=2, connections=c, headers=bearer)
        for turn in range(args.rounds):
            order = list(bases.items()) if turn % 2 == 0 else list(reversed(bases.items()))
            for key, base in order:
                marker = envs[key]["REDIS_KEY_PREFIX"]
                bearer = {"Authorization": f"Bearer {prepared[key][0]}"}
                tokens = [
                    r["refresh_token"] for r in asyncio.run(log_in_all(base, prepared[key][2]))
                ]
                phases: list[tuple[str, Callable[[], Result]]] = [
                    (
                        "GET /health/live",
                        partial(wrk, "live", base + "/health/live", seconds=s, connections=c),
                    ),
                    (
                        "GET /api/me",
                        partial(
                            wrk, "me", base + "/api/me", seconds=s, connections=c, headers=bearer
                        ),
                    ),
                    ("POST /auth/refresh", partial(refresh_phase, "refresh", base, tokens, s)),
                ]
                for label, phase in phases:
                    result, micros = per_request(marker, phase)
                    rows.setdefault(f"{label} {key}", []).append(result.rps)
                    cpu.setdefault(f"{label} {key}", []).append(micros)
    print()
    print(
        f"{'what':<20} {'req/s':>7} {'base':>7} {'ratio':>6}  {'CPU µs/req':>10}"
        f" {'base':>6} {'ratio':>6}   (medians of the rounds)"
    )
    for label in ("GET /health/live", "GET /api/me", "POST /auth/refresh"):
        m, t = (statistics.median(rows[f"{label} {k}"]) for k in ("this", "baseline"))
        cm, ct = (statistics.median(cpu[f"{label} {k}"]) for k in ("this", "baseline"))
        print(
            f"{label:<20} {m:>7.0f} {t:>7.0f} {m / t:>6.3f}  {cm:>10.1f} {ct:>6.1f} {cm / ct:>6.3f}"
        )
    for label in ("GET /health/live", "GET /api/me", "POST /auth/refresh"):
        print(
            f"  rounds {label}: req/s {' '.join(f'{v:.0f}' for v in rows[f'{label} this'])}"
            f" | {' '.join(f'{v:.0f}' for v in rows[f'{label} baseline'])};"
            f" CPU µs {' '.join(f'{v:.1f}' for v in cpu[f'{label} this'])}"
            f" | {' '.join(f'{v:.1f}' for v in cpu[f'{label} baseline'])}"
        )


def run(args: argparse.Namespace, base_db: str, redis_url: str) -> None:
    env = bench_env(base_db, redis_url)
    s, c = args.seconds, args.connections
    results: list[Result] = []
    with server(env, workers=1) as base:
        access, refresh_tokens, names = asyncio.run(prepare_users(base, 32))
        bearer = {"Authorization": f"Bearer {access}"}
        wrk("warm-up", base + "/api/me", seconds=2, connections=c, headers=bearer)
        results.append(wrk("GET /health/live", base + "/health/live", seconds=s, connections=c))
        results.append(
            wrk(
                "GET /api/me (valid token)",
                base + "/api/me",
                seconds=s,
                connections=c,
                headers=bearer,
            )
        )
        results.append(refresh_phase("POST /auth/refresh (32 sessions)", base, refresh_tokens, s))
        # Logins and a light /health/live load at the same time: hashing must not stall the loop.
        login_env = {"BENCH_USERS": ",".join(names), "BENCH_PASSWORD": PASSWORD}
        with ThreadPoolExecutor(2) as pool:
            logins = pool.submit(
                wrk,
                "POST /auth/login",
                base + "/auth/login",
                seconds=s,
                connections=8,
                script="login.lua",
                env=login_env,
            )
            live = pool.submit(
                wrk,
                "GET /health/live during logins",
                base + "/health/live",
                seconds=s,
                connections=4,
            )
            results += [logins.result(), live.result()]
    with server(env, workers=2) as base:
        access, _, _ = asyncio.run(prepare_users(base, 1))
        bearer = {"Authorization": f"Bearer {access}"}
        wrk("warm-up", base + "/api/me", seconds=2, connections=c, headers=bearer)
        results.append(
            wrk(
                "GET /health/live, 2 workers",
                base + "/health/live",
                seconds=s,
                connections=c,
                threads=2,
            )
        )
        results.append(
            wrk(
                "GET /api/me, 2 workers",
                base + "/api/me",
                seconds=s,
                connections=c,
                threads=2,
                headers=bearer,
            )
        )

    live = results[0].rps
    print()
    print(f"{'what':<36} {'req/s':>9} {'ratio':>6} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for r in results:
        print(
            f"{r.name:<36} {r.rps:>9.0f} {r.rps / live:>6.2f} {r.p50_ms:>8.2f} "
            f"{r.p99_ms:>8.2f} {r.errors:>7}"
        )
    two = {r.name: r.rps for r in results}
    print(
        f"2 workers: /api/me / /health/live = "
        f"{two['GET /api/me, 2 workers'] / two['GET /health/live, 2 workers']:.2f}"
    )
    print(f"/api/me / /health/live = {results[1].rps / live:.2f}")


if __name__ == "__main__":
    main()
