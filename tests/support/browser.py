"""What the browser tests start and share: a server set up for browsers, a static server of
another origin, screenshots, and new accounts (the fixtures are in tests/browser/conftest.py)."""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import Page

from tests.support import ROOT, live_server

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
SCREENSHOTS = ROOT / "artifacts" / "browser"
PASSWORD = "correct horse battery"

_names = itertools.count()


def browser_server(workers: int = 2, **overrides: str) -> AbstractContextManager[str]:
    """`live_server` as a browser needs it: cookies over plain http (COOKIE_SECURE=false) and
    a 1 s clock skew, so that a short ACCESS_TOKEN_TTL expires when the test expects it."""
    settings = {"COOKIE_SECURE": "false", "CLOCK_SKEW": "1", **overrides}
    return live_server(workers=workers, workdir=None, **settings)


@dataclass
class ForeignOrigin:
    """Static pages served from another port of 127.0.0.1: another origin, but the same site
    as a server on 127.0.0.1 (ports count for origins, not for sites or cookies), so the
    browser sends that server's SameSite=Strict cookies along with this page's requests."""

    origin: str
    root: Path

    def serve(self, name: str, html: str) -> str:
        """Publish `html` as /`name`; its URL."""
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.origin}/{name}"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@contextmanager
def foreign_origin() -> Iterator[ForeignOrigin]:
    """A `ThreadingHTTPServer` on a free port of 127.0.0.1 serving a scratch directory."""
    with tempfile.TemporaryDirectory() as root:
        handler = functools.partial(_QuietHandler, directory=root)
        httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        try:
            yield ForeignOrigin(f"http://127.0.0.1:{httpd.server_address[1]}", Path(root))
        finally:
            httpd.shutdown()
            httpd.server_close()
            thread.join(timeout=5)


async def save_screenshot(page: Page, name: str) -> Path:
    """artifacts/browser/`name`.png (the whole page), to look at after the run."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    await page.screenshot(path=str(path), full_page=True)
    return path


@dataclass(frozen=True)
class User:
    username: str
    password: str


async def register(base: str, username: str | None = None, password: str = PASSWORD) -> User:
    """A new account through POST /auth/register (a fresh name unless one is given)."""
    name = username or f"browser{os.getpid()}_{next(_names)}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        answer = await http.post("/auth/register", json={"username": name, "password": password})
    assert answer.status_code == 201, answer.text
    return User(name, password)
