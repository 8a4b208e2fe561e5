"""Browser fixtures: the system's Chromium driven by Playwright, servers set up for browsers,
a page of another origin, screenshots and new users.

Playwright's async API, on pytest-asyncio's session loop: its sync API runs a loop of its own
that stays "running" between calls, and the async fixtures of every test then fail.
"""

from __future__ import annotations

import functools
import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.support import ROOT, live_server

CHROMIUM = (
    os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
)
SCREENSHOTS = ROOT / "artifacts" / "browser"
PASSWORD = "correct horse battery"
# generous for a loaded machine; a broken page still fails in seconds, not minutes
TIMEOUT_MS = 15_000

_names = itertools.count()


def browser_server(workers: int = 2, **overrides: str) -> AbstractContextManager[str]:
    """`live_server` as a browser needs it: cookies over plain http (COOKIE_SECURE=false) and
    a 1 s clock skew, so that a short ACCESS_TOKEN_TTL expires when the test expects it."""
    settings = {"COOKIE_SECURE": "false", "CLOCK_SKEW": "1", **overrides}
    return live_server(workers=workers, workdir=None, **settings)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the run (the system's: Playwright's downloads are not used)."""
    if CHROMIUM is None:
        pytest.skip("no Chromium: install chromium or set CHROMIUM=/path/to/chromium")
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        await chromium.close()


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies, no storage) per test: its pages are tabs of one user."""
    fresh = await browser.new_context(viewport={"width": 1100, "height": 800})
    fresh.set_default_timeout(TIMEOUT_MS)
    yield fresh
    await fresh.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A server for the browser (default token lifetimes); its base URL."""
    with browser_server() as base:
        yield base


@dataclass
class ForeignOrigin:
    """Static pages served from another port of 127.0.0.1: another origin, but the same site
    as a server on 127.0.0.1 (ports count for origins, not for sites or cookies)."""

    origin: str
    root: Path

    def serve(self, name: str, html: str) -> str:
        """Publish `html` as /`name`; its URL."""
        (self.root / name).write_text(html, encoding="utf-8")
        return f"{self.origin}/{name}"


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture(scope="session")
def foreign() -> Iterator[ForeignOrigin]:
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


@pytest.fixture
def screenshot() -> Callable[[Page, str], Awaitable[Path]]:
    """`await screenshot(page, "demo-login")`: artifacts/browser/demo-login.png (full page)."""

    async def save(page: Page, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await page.screenshot(path=str(path), full_page=True)
        return path

    return save


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


@pytest.fixture
def new_user() -> Callable[..., Awaitable[User]]:
    """`user = await new_user(base)`: a registered account (see `register`)."""
    return register
