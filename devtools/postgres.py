"""A PostgreSQL cluster of our own, from the installed binaries: trust auth, user `postgres`,
loopback only.

`LocalPostgres.throwaway()` lives in a temporary directory (the outage tests stop, freeze and
restart it; `cleanup()` removes it); `LocalPostgres.persistent(dir, port)` keeps its data
(`make run`'s project-local server under `.local/`). As root the cluster belongs to the
`postgres` user (PostgreSQL refuses to run as root), so every initdb / pg_ctl call runs
through `runuser -u postgres --`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from devtools import LIVE, ServerError, answers, free_port, tail

STEP_TIMEOUT = 60  # seconds for any one initdb / pg_ctl call


def find_pg_bin(version: str | None = None) -> Path:
    """The directory of `initdb` and `pg_ctl`: on PATH, else the newest /usr/lib/postgresql/*;
    with `version` (a cluster's PG_VERSION), that version's own binaries first."""
    candidates: list[Path] = []
    if version:
        candidates.append(Path(f"/usr/lib/postgresql/{version}/bin"))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)

    def major(path: str) -> int:
        number = Path(path).parent.name
        return int(number) if number.isdigit() else 0

    candidates += [
        Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=major, reverse=True)
    ]
    for directory in candidates:
        if (directory / "pg_ctl").is_file() and (directory / "initdb").is_file():
            return directory
    raise ServerError("PostgreSQL binaries (initdb, pg_ctl) are not installed")


def _postgres_user() -> pwd.struct_passwd:
    """The `postgres` system user (created if missing) that runs the cluster for root."""
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "postgres"], check=True, timeout=30
        )
        return pwd.getpwnam("postgres")


class LocalPostgres:
    def __init__(
        self,
        data: Path,
        port: int,
        *,
        host: str = "127.0.0.1",
        socket_dir: Path | None = None,
        durable: bool = True,
        root: Path | None = None,
    ):
        try:
            version: str | None = (data / "PG_VERSION").read_text().strip()
        except OSError:
            version = None
        self.bin = find_pg_bin(version)
        self.host, self.port = host, port
        self.data = data
        self.socket_dir = socket_dir or data
        self.log = (root or data) / "server.log"
        self.durable = durable  # False: fsync off, fit for data that is thrown away
        self.root = root  # removed by cleanup(), when set
        self.run_as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    @classmethod
    def throwaway(cls, port: int | None = None) -> LocalPostgres:
        root = Path(tempfile.mkdtemp(prefix="jwt-pg-"))
        server = cls(
            root / "data", port or free_port(), socket_dir=root / "sock", durable=False, root=root
        )
        LIVE.add(server)
        server.socket_dir.mkdir()
        server._own(root, server.socket_dir)
        return server

    @classmethod
    def persistent(cls, data: Path, port: int, host: str = "127.0.0.1") -> LocalPostgres:
        data.mkdir(parents=True, exist_ok=True)
        server = cls(data, port, host=host)
        server._own(data)
        return server

    def _own(self, *paths: Path) -> None:
        for path in paths:
            if self.run_as:
                owner = _postgres_user()
                os.chown(path, owner.pw_uid, owner.pw_gid)
            os.chmod(path, 0o700)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/{database}"

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
            raise ServerError(f"{' '.join(command)} timed out:\n{tail(self.log)}") from error
        if result.returncode != 0:
            raise ServerError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}"
                f"\n--- server log ---\n{tail(self.log)}"
            )
        return result

    @property
    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def init(self) -> None:
        """initdb; a throwaway cluster skips every fsync (its data is thrown away)."""
        fast = [] if self.durable else ["--no-sync"]
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            *fast,
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
        options = f"-p {self.port} -c listen_addresses={self.host} -k {self.socket_dir}"
        if not self.durable:
            options += (
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
        while not answers(self.host, self.port):
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
        if root is None or not os.path.isdir("/proc"):
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
        """Stop the server whatever its state; a throwaway one's directory goes too."""
        try:
            if self.running:
                self.resume()
                try:
                    self.stop("immediate")
                except ServerError:
                    for child in self._processes():
                        with suppress(ProcessLookupError):
                            os.kill(child, signal.SIGKILL)
        finally:
            if self.root is not None:
                shutil.rmtree(self.root, ignore_errors=True)
            LIVE.discard(self)


@contextmanager
def local_postgres() -> Iterator[LocalPostgres]:
    """A running throwaway PostgreSQL (initdb once); stopped and removed on exit."""
    server = LocalPostgres.throwaway()
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.cleanup()
