"""CPU per request, in-process, without HTTP or wrk: the app driven through its ASGI interface,
`--requests` requests a batch, the *fastest* of `--batches` batches (noise only ever adds
time, so the minimum is the cost). Run for two checkouts, it tells what one costs more than
the other far more precisely than throughput on a shared machine can:

    python -m bench.overhead --baseline ../other-checkout

Each checkout runs in a process of its own (PYTHONPATH), on the bench database and Redis.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PASSWORD = "bench password 1"
BENCH_SECRET = "jwt-refresh-api bench secret, not for any deployment"


async def _call(
    app: Any, method: str, path: str, headers: dict[str, str], body: bytes = b""
) -> tuple[int, bytes]:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    status, chunks = 0, []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status, b"".join(chunks)


async def measure(requests: int, batches: int) -> dict[str, float]:
    """In the checkout on PYTHONPATH: µs of CPU per request, the fastest batch of each."""
    from sanic_testing.testing import SanicASGITestClient

    from app.config import Settings
    from app.factory import create_app

    env = {
        # one secret for every run: the signing keys stay in the bench database, encrypted
        # under it, and each checkout measured must be able to read them
        "JWT_SECRET": BENCH_SECRET,
        "DATABASE_URL": os.environ["BENCH_DATABASE_URL"],
        "REDIS_URL": os.environ["BENCH_REDIS_URL"],
        "REDIS_KEY_PREFIX": f"jwt-refresh-api-bench:{secrets.token_hex(3)}:",
        "ACCESS_LOG": "false",
        "METRICS_TOKEN": secrets.token_urlsafe(24),
        "PURGE_INTERVAL": "0",
    }
    app = create_app(settings=Settings.from_env(environ=env, dotenv=None))
    app.config.TOUCHUP = False
    SanicASGITestClient(app)  # ASGI mode, as the tests run it
    await app._startup()
    await app._server_event("init", "before")
    await app._server_event("init", "after")
    try:
        name = f"bench_{secrets.token_hex(4)}"
        credentials = json.dumps({"username": name, "password": PASSWORD}).encode()
        content = {"content-type": "application/json", "host": "bench"}
        status, _ = await _call(app, "POST", "/auth/register", content, credentials)
        assert status == 201, status
        status, raw = await _call(app, "POST", "/auth/login", content, credentials)
        assert status == 200, raw
        token = json.loads(raw)["access_token"]
        cases = {
            "GET /health/live": ("/health/live", {"host": "bench"}),
            "GET /api/me": ("/api/me", {"host": "bench", "authorization": f"Bearer {token}"}),
        }
        if os.environ.get("BENCH_CASE"):  # one case only (instruction counts under callgrind)
            cases = {os.environ["BENCH_CASE"]: cases[os.environ["BENCH_CASE"]]}
        best: dict[str, float] = {}
        for _ in range(batches):
            for label, (path, headers) in cases.items():
                started = time.process_time()
                for _ in range(requests):
                    status, _ = await _call(app, "GET", path, headers)
                spent = time.process_time() - started
                assert status == 200, (label, status)
                best[label] = min(best.get(label, float("inf")), spent / requests * 1e6)
        return best
    finally:
        await app._server_event("shutdown", "before")
        await app._server_event("shutdown", "after")


def run_in(root: Path, requests: int, batches: int) -> dict[str, float]:
    """The measurement in a process of its own whose `app` is `root`'s: the script by its path
    from a scratch directory, so that neither this checkout nor its editable install shadows
    the one measured."""
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--inner", str(requests), str(batches)],
        cwd=tempfile.gettempdir(),
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--baseline", type=Path, required=False)
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--batches", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--inner", nargs=2, type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        print(json.dumps(asyncio.run(measure(*args.inner))))
        return
    roots = {"this": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline else {})
    best: dict[str, dict[str, float]] = {key: {} for key in roots}
    for _ in range(args.rounds):
        for key, root in roots.items():
            for label, micros in run_in(root, args.requests, args.batches).items():
                best[key][label] = min(best[key].get(label, float("inf")), micros)
    print(f"{'CPU µs per request (in-process, fastest batch)':<48} {'this':>8}", end="")
    print(f" {'baseline':>9} {'more':>7}" if args.baseline else "")
    for label, micros in best["this"].items():
        line = f"{label:<48} {micros:>8.1f}"
        if args.baseline:
            base = best["baseline"][label]
            line += f" {base:>9.1f} {(micros / base - 1) * 100:>6.1f}%"
        print(line)


if __name__ == "__main__":
    main()
