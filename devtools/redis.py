"""A `redis-server` of our own, from the installed binary: no persistence, loopback only.

`LocalRedis.throwaway()` runs as our child in a temporary directory (the outage tests stop,
freeze and restart it on the same port; `cleanup()` removes it); `LocalRedis.persistent(dir,
port)` runs daemonised, found again through its pid file (`make run`'s project-local server
under `.local/`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path

from devtools import LIVE, ServerError, answers, free_port, tail


class LocalRedis:
    def __init__(
        self,
        directory: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        daemon: bool = False,
        args: Sequence[str] = (),
    ):
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not installed")
        self.binary = binary
        self.host, self.port = host, port
        self.dir = directory
        self.log = directory / "redis.log"
        self.pidfile = directory / "redis.pid"
        self.daemon = daemon
        self.args = list(args)  # more redis-server options
        self.process: subprocess.Popen[bytes] | None = None
        self.root: Path | None = None

    @classmethod
    def throwaway(cls, port: int | None = None, args: Sequence[str] = ()) -> LocalRedis:
        root = Path(tempfile.mkdtemp(prefix="jwt-redis-"))
        server = cls(root, port or free_port(), args=args)
        server.root = root
        LIVE.add(server)
        return server

    @classmethod
    def persistent(cls, directory: Path, port: int, host: str = "127.0.0.1") -> LocalRedis:
        directory.mkdir(parents=True, exist_ok=True)
        return cls(directory, port, host=host, daemon=True)

    def url(self, db: int = 0) -> str:
        return f"redis://{self.host}:{self.port}/{db}"

    @property
    def pid(self) -> int | None:
        if self.process is not None:
            return self.process.pid if self.process.poll() is None else None
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
        except (OSError, ValueError):
            return None
        return pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def _ping(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        if self.running:
            return
        command = [
            self.binary,
            "--port",
            str(self.port),
            "--bind",
            self.host,
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.dir),
            *self.args,
        ]
        if self.daemon:
            command += ["--daemonize", "yes", "--pidfile", str(self.pidfile)]
            command += ["--logfile", str(self.log)]
            subprocess.run(command, check=True, timeout=30, stdin=subprocess.DEVNULL)
        else:
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [*command, "--daemonize", "no"],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        deadline = time.monotonic() + 10
        while not self._ping():
            if (self.process is not None and self.process.poll() is not None) or (
                time.monotonic() > deadline
            ):
                self.stop()
                raise ServerError(f"redis-server did not come up on {self.port}:\n{tail(self.log)}")
            time.sleep(0.02)

    def stop(self) -> None:
        pid = self.pid
        if pid is None:
            self.process = None
            return
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # a frozen server cannot handle SIGTERM
            os.kill(pid, signal.SIGTERM)
        if self.process is not None:
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
            self.process = None
        deadline = time.monotonic() + 5
        while answers(self.host, self.port, timeout=0.2) and time.monotonic() < deadline:
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze: the kernel still accepts connections on the port; nothing is answered."""
        if (pid := self.pid) is not None:
            os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        if (pid := self.pid) is not None:
            os.kill(pid, signal.SIGCONT)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
            LIVE.discard(self)


@contextmanager
def local_redis(*args: str) -> Iterator[LocalRedis]:
    """A running throwaway Redis (with more redis-server options); stopped and removed on exit."""
    server = LocalRedis.throwaway(args=args)
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
