"""The docs page (GET /docs) in a real Chromium that may reach the app's origin only: Swagger
UI renders every operation, its Authorize dialog logs a real user in through the password
flow (the relative tokenUrl resolves to the app), and "Try it out" on GET /api/me answers
with that user; no request to another origin is even attempted, no CSP violation."""

from __future__ import annotations

import base64
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Route, expect

from tests.support.browser import SCREENSHOTS, User

pytestmark = pytest.mark.e2e

NewUser = Callable[..., Awaitable[User]]
Screenshot = Callable[[Page, str], Awaitable[Path]]


@dataclass
class Offline:
    """What the page asked for: every request to another origin is aborted and recorded, as
    is every Content-Security-Policy complaint and uncaught error."""

    origin: str
    foreign: list[str] = field(default_factory=list)
    csp: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def route(self, route: Route) -> None:
        url = route.request.url
        parts = urlsplit(url)
        if f"{parts.scheme}://{parts.netloc}" == self.origin:
            await route.continue_()
        else:
            self.foreign.append(url)
            await route.abort("internetdisconnected")

    def console(self, message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text or "Refused to" in message.text:
            self.csp.append(message.text)


async def offline(context: BrowserContext, page: Page, base: str) -> Offline:
    watch = Offline(base)
    await context.route("**/*", watch.route)
    page.on("console", watch.console)
    page.on("pageerror", lambda error: watch.errors.append(str(error)))
    return watch


async def operation_count(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        spec = (await http.get("/docs/openapi.json")).json()
    return sum(1 for items in spec["paths"].values() for method in items if method != "parameters")


async def test_docs_log_in_with_the_password_flow_and_try_get_me(
    context: BrowserContext,
    page: Page,
    server: str,
    new_user: NewUser,
    screenshot: Screenshot,
) -> None:
    watch = await offline(context, page, server)
    user = await new_user(server)

    # the page renders every operation of the document (not a blank page)
    await page.goto(f"{server}/docs")
    await expect(page.locator(".info .title")).to_contain_text("jwt-refresh-api")
    expected = await operation_count(server)
    await expect(page.locator(".opblock")).to_have_count(expected)
    await expect(page.locator("#operations-resources-getMe")).to_be_visible()
    await screenshot(page, "docs-page")

    # Authorize: the oauth2 scheme asks for a username and a password
    await page.locator("button.authorize").first.click()
    dialog = page.locator(".dialog-ux .modal-ux")
    await expect(dialog).to_be_visible()
    oauth2 = dialog.locator(".auth-container").filter(has_text="OAuth2, password")
    await expect(oauth2).to_contain_text("/auth/token")
    await oauth2.locator("#oauth_username").fill(user.username)
    await oauth2.locator("#oauth_password").fill(user.password)
    await screenshot(page, "docs-authorize")
    async with page.expect_response(lambda answer: "/auth/token" in answer.url) as answered:
        await oauth2.get_by_role("button", name="Authorize").click()
    answer = await answered.value

    # the relative tokenUrl went to this app, with the form Swagger UI sends
    assert answer.url == f"{server}/auth/token", answer.url
    assert answer.status == 200, await answer.text()
    sent = answer.request
    assert sent.method == "POST"
    form = parse_qs(sent.post_data or "", keep_blank_values=True)
    assert form["grant_type"] == ["password"]
    assert form["username"] == [user.username] and form["password"] == [user.password]
    assert "scope" not in form  # no scope ticked: everything the account may have
    # its default "Authorization header" for a client id and secret left empty
    empty = base64.b64encode(b":").decode()
    assert sent.headers.get("authorization") == f"Basic {empty}"
    await expect(oauth2.get_by_role("button", name="Logout")).to_be_visible()
    await screenshot(page, "docs-authorized")
    await oauth2.get_by_role("button", name="Close").click()
    await expect(dialog).to_be_hidden()

    # Try it out on GET /api/me: Swagger UI sends the token it got, the answer names the user
    me = page.locator("#operations-resources-getMe")
    await me.locator(".opblock-summary").click()
    await me.get_by_role("button", name="Try it out").click()
    async with page.expect_response(lambda answer: answer.url.endswith("/api/me")) as called:
        await me.get_by_role("button", name="Execute").click()
    call = await called.value
    assert call.status == 200, await call.text()
    assert call.request.headers.get("authorization", "").startswith("Bearer ")
    assert json.loads(await call.text())["username"] == user.username
    live = me.locator(".live-responses-table tr.response")
    await expect(live.locator(".response-col_status").first).to_have_text("200")
    await expect(live.locator(".response-col_description").first).to_contain_text(user.username)
    await screenshot(page, "docs-me")
    await me.screenshot(path=str(SCREENSHOTS / "docs-me-operation.png"))  # the part to read

    assert not watch.foreign, f"requests to other origins: {watch.foreign}"
    assert not watch.csp, watch.csp
    assert not watch.errors, watch.errors


async def test_the_oauth2_redirect_page_runs_under_its_policy(
    context: BrowserContext, page: Page, server: str
) -> None:
    """Its one inline script runs (the CSP allows it by hash): opened without Swagger UI as
    its opener, it fails on exactly that, and on nothing the policy refused."""
    watch = await offline(context, page, server)
    async with page.expect_event("pageerror") as failed:
        answer = await page.goto(f"{server}/docs/oauth2-redirect.html")
    assert answer is not None and answer.status == 200
    assert "swaggerUIRedirectOauth2" in str(await failed.value), watch.errors
    assert not watch.csp, watch.csp
    assert not watch.foreign, watch.foreign
