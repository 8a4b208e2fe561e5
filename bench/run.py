"""make bench: start the server on real PostgreSQL and Redis, load it with wrk, print one table.

Every figure comes from one run on this machine and is reported next to `GET /health/live`
measured in the same run, because absolute numbers on a shared machine mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.cli import create_database, migrate  # noqa: E402

PASSWORD = "bench password 1"


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int = 0


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def server(env: dict[str, str], workers: int) -> Iterator[str]:
    port = free_port()
    with tempfile.TemporaryDirectory() as cwd, open(Path(cwd) / "server.log", "wb") as log:
        process = subprocess.Popen(
            [
                str(ROOT / ".venv/bin/sanic"),
                "app.main",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--no-motd",
                "--no-access-logs",
            ],
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                text = (Path(cwd) / "server.log").read_text(errors="replace")
                if text.count("Worker ready") >= workers:
                    try:
                        if httpx.get(base + "/health", timeout=2).status_code == 200:
                            break
                    except httpx.HTTPError:
                        pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"server did not start:\n{text}")
                time.sleep(0.1)
            yield base
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()  # type: ignore[union-attr]
    return float(value) * _UNITS[unit]


def wrk(
    name: str,
    url: str,
    *,
    seconds: int,
    connections: int,
    threads: int = 1,
    headers: dict[str, str] | None = None,
    script: str | None = None,
    env: dict[str, str] | None = None,
) -> Result:
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{seconds}s",
        "--latency",
        "--timeout",
        "5s",
    ]
    for key, value in (headers or {}).items():
        command += ["-H", f"{key}: {value}"]
    if script:
        command += ["-s", str(ROOT / "bench" / script)]
    out = subprocess.run(
        command + [url],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
        timeout=seconds + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(match.group(1))
    if match := re.search(r"FAILED (\d+)", out):
        errors = max(errors, int(match.group(1)))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    ):
        errors += sum(int(g) for g in match.groups())
    return Result(name, rps, p50, p99, errors)


async def prepare_users(base: str, count: int) -> tuple[str, list[str]]:
    """Register `count` users; the access token of the first, a refresh token for each."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as client:
        run = secrets.token_hex(3)
        names = [f"bench_{run}_{i}" for i in range(count)]

        async def one(name: str) -> dict[str, str]:
            r = await client.post("/auth/register", json={"username": name, "password": PASSWORD})
            r.raise_for_status()
            r = await client.post("/auth/login", json={"username": name, "password": PASSWORD})
            r.raise_for_status()
            return r.json()  # type: ignore[no-any-return]

        responses = await asyncio.gather(*(one(name) for name in names))
    return responses[0]["access_token"], [r["refresh_token"] for r in responses]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=8, help="length of each wrk phase")
    parser.add_argument("--connections", type=int, default=64)
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


def run(args: argparse.Namespace, base_db: str, redis_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JWT_", "DATABASE_", "REDIS_"))}
    env.update(
        JWT_SECRET=secrets.token_urlsafe(48),
        DATABASE_URL=base_db,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=f"jwt-refresh-api-bench:{secrets.token_hex(3)}:",
        PYTHONPATH=str(ROOT),
    )
    s, c = args.seconds, args.connections
    results: list[Result] = []
    with server(env, workers=1) as base:
        access, refresh_tokens = asyncio.run(prepare_users(base, 32))
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
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as tokens_file:
            tokens_file.write("\n".join(refresh_tokens) + "\n")
        try:
            results.append(
                wrk(
                    "POST /auth/refresh (32 sessions)",
                    base + "/auth/refresh",
                    seconds=s,
                    connections=32,
                    threads=32,
                    script="refresh.lua",
                    env={"BENCH_TOKENS": tokens_file.name},
                )
            )
        finally:
            os.unlink(tokens_file.name)
        user = f"bench_login_{secrets.token_hex(3)}"
        httpx.post(
            base + "/auth/register", json={"username": user, "password": PASSWORD}, timeout=30
        ).raise_for_status()
        # Logins and a light /health/live load at the same time: hashing must not stall the loop.
        login_env = {"BENCH_USER": user, "BENCH_PASSWORD": PASSWORD}
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
        access, _ = asyncio.run(prepare_users(base, 1))
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
