"""Developer tooling, not shipped with the service: the servers that `make run`, the tests
and `make bench` start (PostgreSQL, Redis, the app itself), one helper each, and what they
share here."""

from __future__ import annotations

import atexit
import socket
from contextlib import suppress
from pathlib import Path
from typing import Any

# Throwaway servers still running: stopped at exit if their owner's clean-up never ran.
LIVE: set[Any] = set()


@atexit.register
def cleanup_all() -> None:
    """Last resort if a caller's own clean-up never ran (an interpreter exit mid-test)."""
    for server in list(LIVE):
        with suppress(Exception):
            server.cleanup()


class ServerError(RuntimeError):
    """A server could not be set up or controlled; the message carries its log."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections there."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
