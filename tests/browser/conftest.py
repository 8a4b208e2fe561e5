"""Browser fixtures: the system's Chromium driven by Playwright, a server set up for browsers,
a page of another origin, screenshots and new users (the helpers: tests/support/browser.py).

Playwright's async API, on pytest-asyncio's session loop: its sync API runs a loop of its own
that stays "running" between calls, and the async fixtures of every test then fail.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.support.browser import (
    CHROMIUM,
    ForeignOrigin,
    User,
    browser_server,
    foreign_origin,
    register,
    save_screenshot,
)

# generous for a loaded machine; a broken page still fails in seconds, not minutes
TIMEOUT_MS = 15_000
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    """One headless Chromium for the run (the system's: Playwright's downloads are not used)."""
    if CHROMIUM is None:
        # a failure, never a skip: `make test` leaves tests/browser out, saying so, when there
        # is no Chromium; collected anyway, these tests must not pass by not running
        pytest.fail(
            "no Chromium: apt-get install -y chromium, or set CHROMIUM=/path/to/chromium"
            " (make test leaves the browser tests out when it finds none)"
        )
    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(executable_path=CHROMIUM)
        yield chromium
        await chromium.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.when == "call" and report.failed:
        item.stash[FAILED] = True
    return report


FAILED = pytest.StashKey[bool]()


@pytest.fixture
async def context(
    browser: Browser, request: pytest.FixtureRequest
) -> AsyncIterator[BrowserContext]:
    """A fresh profile (no cookies, no storage) per test: its pages are tabs of one user.
    After a failure, each tab's screenshot: artifacts/browser/failed-<test>-<tab>.png."""
    fresh = await browser.new_context(viewport={"width": 1100, "height": 800})
    fresh.set_default_timeout(TIMEOUT_MS)
    try:
        yield fresh
        if request.node.stash.get(FAILED, False):
            for number, tab in enumerate(fresh.pages):
                await save_screenshot(tab, f"failed-{request.node.name}-{number}")
    finally:
        await fresh.close()


@pytest.fixture
async def page(context: BrowserContext) -> Page:
    return await context.new_page()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """A server for the browser (default token lifetimes); its base URL."""
    with browser_server() as base:
        yield base


@pytest.fixture(scope="session")
def foreign() -> Iterator[ForeignOrigin]:
    """Pages of another origin on the same site: `foreign.serve("x.html", html)` -> its URL."""
    with foreign_origin() as pages:
        yield pages


@pytest.fixture
def screenshot() -> Callable[[Page, str], Awaitable[Path]]:
    """`await screenshot(page, "demo-login")`: artifacts/browser/demo-login.png (full page)."""
    return save_screenshot


@pytest.fixture
def new_user() -> Callable[..., Awaitable[User]]:
    """`user = await new_user(base)`: a registered account (see `register`)."""
    return register
