"""The service itself, as users run it: `sanic app.main --workers N` in a subprocess.

`app_server(env, workers=2)` starts it on a free loopback port in a scratch working directory
(so no `.env` of the checkout leaks in), waits until every worker is ready, yields its base
URL, and on exit stops it and every process it started: the server is the leader of its own
process group, and whatever survives a graceful stop is killed with the group.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext, suppress
from pathlib import Path

import httpx

from devtools import free_port

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


@contextmanager
def app_server(
    env: dict[str, str],
    *,
    workers: int = 2,
    args: Sequence[str] = (),
    ready_path: str = "/health/live",
    python: str = sys.executable,
    workdir: Path | None = None,
) -> Iterator[str]:
    """`python`: the interpreter whose installed service runs (another virtualenv's, say);
    `workdir`: where it runs and writes `server.log` (a new temporary directory if None)."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory() if workdir is None else nullcontext(str(workdir)) as cwd,
        open(Path(cwd) / "server.log", "wb") as log,
    ):
        command = [python, "-m", "sanic", "app.main", "--host", "127.0.0.1"]
        command += ["--port", str(port), "--workers", str(workers), "--no-motd", *args]
        process = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_ready(base + ready_path, process, Path(cwd) / "server.log", workers)
            yield base
        finally:
            _stop(process)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, workers: int) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early:\n{log.read_text(errors='replace')}")
        if log.read_text(errors="replace").count("Worker ready") >= workers:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
        time.sleep(0.1)
    raise RuntimeError(f"server not ready in {READY_TIMEOUT} s:\n{log.read_text(errors='replace')}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, as an operator stops it; then SIGKILL for the whole group, leaving nothing."""
    with suppress(ProcessLookupError):
        process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        pass
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=5)
