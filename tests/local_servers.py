"""Throwaway PostgreSQL and Redis servers that a test may stop, freeze and start again.

The outage tests must never touch the shared servers, so they run the app against servers of
their own: a PostgreSQL cluster initialised into a temporary directory from the installed
binaries (the way `scripts/services.sh` does it) and a `redis-server` subprocess, each on a
free loopback port. `stop()` / `start()` take a server down and bring it back on the SAME port
and data directory; `pause()` / `resume()` freeze it (SIGSTOP / SIGCONT): it still accepts TCP
connections but never answers, the "hung dependency" case. `cleanup()` always leaves nothing
behind, and the context managers call it whatever happens in between.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from tests.support import free_port

HOST = "127.0.0.1"
STEP_TIMEOUT = 60  # seconds for any one initdb / pg_ctl call


class ServerError(RuntimeError):
    """A throwaway server could not be set up or controlled; the message carries its log."""


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _answers(port: int, timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=timeout):
            return True
    except OSError:
        return False


def find_pg_bin() -> Path:
    """The directory of `initdb` and `pg_ctl`: on PATH, else the newest /usr/lib/postgresql/*."""
    candidates: list[Path] = []
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def version(path: str) -> int:
        number = Path(path).parent.name
        return int(number) if number.isdigit() else 0

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version, reverse=True)
    ]
    for directory in candidates:
        if (directory / "pg_ctl").is_file() and (directory / "initdb").is_file():
            return directory
    raise ServerError("PostgreSQL binaries (initdb, pg_ctl) are not installed")


_live: set[LocalPostgres | LocalRedis] = set()


@atexit.register
def _cleanup_leftovers() -> None:
    """Last resort if a fixture's own clean-up never ran (an interpreter exit mid-test)."""
    for server in list(_live):
        with suppress(Exception):
            server.cleanup()


class LocalPostgres:
    """A PostgreSQL cluster of its own: trust auth, user `postgres`, loopback only.

    As root the cluster belongs to the `postgres` user (PostgreSQL refuses to run as root),
    so every initdb / pg_ctl call runs through `runuser -u postgres --`.
    """

    def __init__(self, port: int | None = None):
        self.bin = find_pg_bin()
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="jwt-outage-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "sock"
        self.log = self.root / "server.log"
        self.run_as: list[str] = []
        _live.add(self)
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                self.cleanup()
                raise ServerError("running as root and there is no `postgres` user") from None
            self.run_as = ["runuser", "-u", "postgres", "--"]
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        os.chmod(self.root, 0o700)
        self.socket_dir.mkdir()
        if self.run_as:
            os.chown(self.socket_dir, pwd.getpwnam("postgres").pw_uid, -1)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{HOST}:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = STEP_TIMEOUT) -> subprocess.CompletedProcess[str]:
        command = [*self.run_as, *args]
        try:
            result = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as error:
            raise ServerError(f"{' '.join(command)} timed out:\n{_tail(self.log)}") from error
        if result.returncode != 0:
            raise ServerError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"\n--- server log ---\n{_tail(self.log)}"
            )
        return result

    def init(self) -> None:
        """initdb, once; `--no-sync` and fsync=off below: this data is thrown away."""
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            "--no-instructions",
        )

    @property
    def pid(self) -> int | None:
        """The postmaster's pid while it runs (first line of postmaster.pid)."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().split("\n", 1)[0])
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    @property
    def running(self) -> bool:
        return self.pid is not None

    def start(self) -> None:
        """`pg_ctl start -w`: returns once the server accepts connections on `self.port`."""
        options = (
            f"-p {self.port} -c listen_addresses={HOST} -k {self.socket_dir}"
            " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
            " -c max_connections=50 -c shared_buffers=16MB"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )
        deadline = time.monotonic() + 10
        while not _answers(self.port):
            if time.monotonic() > deadline:
                raise ServerError(f"PostgreSQL started but port {self.port} does not answer")
            time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """`pg_ctl stop -m fast`: every connection is closed and the port stops answering."""
        if not self.running:
            return
        self.resume()  # a frozen server cannot handle the shutdown signal
        self._run(
            str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "30", "stop"
        )

    def _processes(self) -> list[int]:
        """The postmaster and every process it forked (backends, checkpointer, ...)."""
        root = self.pid
        if root is None:
            return []
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces and parentheses: the ppid follows the last ')'.
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
        found, todo = [], [root]
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found

    def pause(self) -> None:
        """Freeze the whole cluster: connections are accepted, nothing is ever answered."""
        for pid in self._processes():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGSTOP)

    def resume(self) -> None:
        for pid in self._processes():
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)

    def cleanup(self) -> None:
        """Stop the server whatever its state, and remove its directory."""
        try:
            if self.running:
                self.resume()
                try:
                    self.stop("immediate")
                except ServerError:
                    pid = self.pid
                    if pid is not None:
                        for child in self._processes():
                            with suppress(ProcessLookupError):
                                os.kill(child, signal.SIGKILL)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            _live.discard(self)


class LocalRedis:
    """`redis-server` in the foreground as our own subprocess: no persistence, loopback only."""

    def __init__(self, port: int | None = None):
        binary = shutil.which("redis-server")
        if binary is None:
            raise ServerError("redis-server is not installed")
        self.binary = binary
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix="jwt-outage-redis-"))
        self.log = self.root / "redis.log"
        self.process: subprocess.Popen[bytes] | None = None
        _live.add(self)

    def url(self, db: int = 0) -> str:
        return f"redis://{HOST}:{self.port}/{db}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _ping(self) -> bool:
        try:
            with socket.create_connection((HOST, self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def start(self) -> None:
        if self.running:
            return
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    "--port",
                    str(self.port),
                    "--bind",
                    HOST,
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                    "--dir",
                    str(self.root),
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 10
        while not self._ping():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise ServerError(
                    f"redis-server did not come up on {self.port}:\n{_tail(self.log)}"
                )
            time.sleep(0.02)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        with suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGCONT)  # a frozen server cannot handle SIGTERM
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        deadline = time.monotonic() + 5
        while _answers(self.port, timeout=0.2) and time.monotonic() < deadline:
            time.sleep(0.02)

    def pause(self) -> None:
        """Freeze: the kernel still accepts connections on the port; nothing is answered."""
        if self.running:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.running:
            assert self.process is not None
            os.kill(self.process.pid, signal.SIGCONT)

    def cleanup(self) -> None:
        try:
            self.stop()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
            _live.discard(self)


@contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """A running throwaway PostgreSQL (initdb once); stopped and removed on exit."""
    server = LocalPostgres()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()


@contextmanager
def local_redis() -> Iterator[LocalRedis]:
    """A running throwaway Redis; stopped and removed on exit."""
    server = LocalRedis()
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
