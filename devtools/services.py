"""Make sure PostgreSQL and Redis answer at the given URLs (`make run`, `make test`, `make
bench`). When nothing answers on a loopback address, start a project-local server (data in
`.local/`) from the installed binaries, or say exactly what to install.

    python -m devtools.services POSTGRES_URL REDIS_URL
    python -m devtools.services --stop        # stop the project-local servers

`--local DIR` puts the project-local servers somewhere else than `.local/`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

from devtools import ServerError, answers
from devtools.postgres import LocalPostgres, find_pg_bin
from devtools.redis import LocalRedis

LOCAL = Path(__file__).resolve().parent.parent / ".local"
LOOPBACK = ("localhost", "::1")
INSTALL = {
    "PostgreSQL": "Debian/Ubuntu: apt-get install postgresql; macOS: brew install postgresql",
    "Redis": "Debian/Ubuntu: apt-get install redis-server; macOS: brew install redis",
}
URL_NAME = {"PostgreSQL": "DATABASE_URL", "Redis": "REDIS_URL"}


def say(text: str) -> None:
    print(text, file=sys.stderr)


def host_port(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    return parts.hostname or "127.0.0.1", parts.port or default_port


def is_loopback(host: str) -> bool:
    return host.startswith("127.") or host in LOOPBACK


def _start_postgres(local: Path, host: str, port: int) -> None:
    server = LocalPostgres.persistent(local / f"postgres-{port}", port, host)
    if not server.initialised:
        say(f"initialising a project-local PostgreSQL in {server.data}")
        server.init()
    say(f"starting a project-local PostgreSQL on {host}:{port}")
    server.start()


def _start_redis(local: Path, host: str, port: int) -> None:
    say(f"starting a project-local Redis on {host}:{port}")
    LocalRedis.persistent(local / f"redis-{port}", port, host).start()


def _installed(kind: str) -> bool:
    if kind == "Redis":
        return shutil.which("redis-server") is not None
    try:
        find_pg_bin()
    except ServerError:
        return False
    return True


def ensure(kind: str, url: str, default_port: int, local: Path = LOCAL) -> bool:
    host, port = host_port(url, default_port)
    if answers(host, port, timeout=2):
        return True
    if not is_loopback(host):
        say(f"{kind} does not answer at {host}:{port}; check the URL or start it there.")
        return False
    if not _installed(kind):
        say(f"{kind} does not answer on {host}:{port} and is not installed.")
        say(f"Install it ({INSTALL[kind]}), or set {URL_NAME[kind]} to a running server.")
        return False
    try:
        (_start_postgres if kind == "PostgreSQL" else _start_redis)(local, host, port)
    except (ServerError, OSError, subprocess.SubprocessError) as error:
        say(f"{kind} could not be started on {host}:{port} (logs in {local}): {error}")
        return False
    deadline = time.monotonic() + 10
    while not answers(host, port):
        if time.monotonic() > deadline:
            say(f"{kind} did not come up on {host}:{port} (logs in {local})")
            return False
        time.sleep(0.2)
    return True


def _port(directory: Path) -> int | None:
    suffix = directory.name.rsplit("-", 1)[1]
    return int(suffix) if suffix.isdigit() else None


def stop_local(local: Path = LOCAL) -> bool:
    """Stop every project-local server that `ensure` started (their data stays); each one is
    tried even when another fails. False if one could not be stopped."""
    ok = True
    for pattern, pidfile, kind in (
        ("postgres-*", "postmaster.pid", "PostgreSQL"),
        ("redis-*", "redis.pid", "Redis"),
    ):
        for directory in sorted(local.glob(pattern)):
            port = _port(directory)
            if port is None or not (directory / pidfile).is_file():
                continue
            try:
                server = (
                    LocalPostgres(directory, port)
                    if kind == "PostgreSQL"
                    else LocalRedis(directory, port, daemon=True)
                )
                if server.running:
                    say(f"stopping the project-local {kind} on port {port}")
                    server.stop()
            except (ServerError, OSError, subprocess.SubprocessError) as error:
                say(f"could not stop the project-local {kind} in {directory}: {error}")
                ok = False
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.services", description=__doc__)
    parser.add_argument("postgres_url", nargs="?")
    parser.add_argument("redis_url", nargs="?")
    parser.add_argument("--stop", action="store_true", help="stop the project-local servers")
    parser.add_argument("--local", type=Path, default=LOCAL, help="where their data lives")
    args = parser.parse_args(argv)
    if args.stop:
        return 0 if stop_local(args.local) else 1
    if not args.postgres_url or not args.redis_url:
        parser.error("give POSTGRES_URL and REDIS_URL, or --stop")
    ok = ensure("PostgreSQL", args.postgres_url, 5432, args.local) and ensure(
        "Redis", args.redis_url, 6379, args.local
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
