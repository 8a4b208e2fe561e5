"""The demo page (GET /demo) in a real Chromium: logging in, a session that outlives its access
tokens and survives reloads and two tabs, logging out, a refresh cookie no script can read,
and pages of another origin that can't use the cookie unless CORS_ORIGINS lists them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import BrowserContext, ConsoleMessage, Page, Response, Route, expect

from tests.support.browser import PASSWORD, ForeignOrigin, User, browser_server

pytestmark = pytest.mark.e2e

TTL = 3  # ACCESS_TOKEN_TTL of these servers: an access token expires within a test
SKEW = 1  # their CLOCK_SKEW (browser_server): how long past `exp` a token is still taken

NewUser = Callable[..., Awaitable[User]]
Screenshot = Callable[[Page, str], Awaitable[Path]]


@pytest.fixture(scope="module")
def demo() -> Iterator[str]:
    with browser_server(ACCESS_TOKEN_TTL=str(TTL)) as base:
        yield base


@pytest.fixture(scope="module")
def trusting(foreign: ForeignOrigin) -> Iterator[str]:
    """A server whose CORS_ORIGINS lists the foreign origin."""
    with browser_server(ACCESS_TOKEN_TTL=str(TTL), CORS_ORIGINS=foreign.origin) as base:
        yield base


# -- what a visitor does, and sees ----------------------------------------------------------


async def log_in(page: Page, base: str, user: User, button: str = "Log in") -> None:
    """Open /demo, fill the form and click `button`; returns once the account is shown."""
    await page.goto(f"{base}/demo")
    form = page.locator("#login")
    await form.get_by_label("Username").fill(user.username)
    await form.get_by_label("Password").fill(user.password)
    await form.get_by_role("button", name=button).click()
    await shows_account(page, user)


async def shows_account(page: Page, user: User) -> None:
    await expect(page.locator("#me-username")).to_have_text(user.username)
    await expect(page.locator("#login")).to_be_hidden()
    await expect(page.locator("#status")).not_to_have_class("error")


async def shows_login(page: Page) -> None:
    await expect(page.locator("#login")).to_be_visible()
    await expect(page.locator("#app")).to_be_hidden()


async def add_note(page: Page, title: str, body: str = "") -> None:
    form = page.locator("#note-form")
    await form.get_by_placeholder("Title").fill(title)
    await form.get_by_placeholder("Body").fill(body)
    await form.get_by_role("button", name="Add note").click()
    await expect(page.locator("#notes")).to_contain_text(title)
    await expect(page.locator("#status")).to_have_text("Note added.")


async def expired(page: Page) -> None:
    """Until the server refuses the page's access token: its expiry, shown on the page, plus
    the clock skew it tolerates (and a margin)."""
    await page.wait_for_function(
        "margin => Date.now() > Number(document.getElementById('expiry').dataset.expiresAt)"
        " + margin",
        arg=SKEW * 1000 + 500,
        polling=100,
    )


def is_refresh(response: Response) -> bool:
    return response.url.endswith("/auth/refresh")


def refreshes(context: BrowserContext) -> list[Response]:
    """Every answer to POST /auth/refresh from now on, in any tab."""
    seen: list[Response] = []

    def note(response: Response) -> None:
        if is_refresh(response):
            seen.append(response)

    context.on("response", note)
    return seen


async def cookie(context: BrowserContext, name: str) -> dict[str, Any] | None:
    return next((dict(c) for c in await context.cookies() if c["name"] == name), None)


# -- the tests ------------------------------------------------------------------------------


async def test_logging_in_shows_the_account_and_a_reload_resumes_it(
    page: Page, demo: str, new_user: NewUser, screenshot: Screenshot
) -> None:
    user = await new_user(demo)
    # another session of the same account, so that the list shows two
    async with httpx.AsyncClient(base_url=demo, headers={"User-Agent": "curl/8.5.0"}) as http:
        other = await http.post(
            "/auth/login", json={"username": user.username, "password": user.password}
        )
        assert other.status_code == 200, other.text
    curl_refresh = other.json()["refresh_token"]
    complaints: list[str] = []  # CSP violations and uncaught errors, as the console shows

    def on_console(message: ConsoleMessage) -> None:
        if "Content Security Policy" in message.text:
            complaints.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: complaints.append(str(error)))
    await page.goto(f"{demo}/demo")
    await shows_login(page)
    await screenshot(page, "demo-login")

    await log_in(page, demo, user)
    await expect(page.locator("#me-scope")).to_have_text("notes:read notes:write")
    await expect(page.locator("#expiry")).to_contain_text("expires at")
    await expect(page.locator("#sessions tr")).to_have_count(2)
    await expect(page.locator("#sessions tr.current")).to_contain_text("Headless Chrome")
    await add_note(page, "Groceries", "oat milk, lemons, basil")
    await add_note(page, "Call the plumber", "before Friday")
    await expect(page.locator("#notes li")).to_have_count(2)
    await screenshot(page, "demo-account")

    await page.reload()
    await shows_account(page, user)  # resumed through the cookie: no form filled
    await expect(page.locator("#notes li")).to_have_count(2)

    await page.locator("#sessions tr:not(.current)").get_by_role("button", name="End").click()
    await expect(page.locator("#status")).to_have_text("Session ended.")
    await expect(page.locator("#sessions tr")).to_have_count(1)
    async with httpx.AsyncClient(base_url=demo) as http:
        ended = await http.post("/auth/refresh", json={"refresh_token": curl_refresh})
    assert ended.status_code == 401, ended.text  # that session really ended
    assert complaints == []


async def test_an_outage_on_reload_keeps_the_session_and_offers_to_try_again(
    context: BrowserContext, page: Page, demo: str, new_user: NewUser
) -> None:
    """A 503 while resuming is not a logout: no login form (a second session), the cookies
    kept, a button to try again that resumes once the service is back. Ending this browser's
    own session from the list logs it out and takes the cookies with it."""
    user = await new_user(demo)
    await log_in(page, demo, user)

    async def unavailable(route: Route) -> None:
        await route.fulfill(
            status=503,
            headers={"Retry-After": "2"},
            json={"error": "temporarily_unavailable", "error_description": "Try again shortly."},
        )

    await page.route("**/auth/refresh", unavailable)
    await page.reload()
    await expect(page.locator("#loading-text")).to_contain_text("Try again shortly.")
    await expect(page.get_by_role("button", name="Try again")).to_be_visible()
    await expect(page.locator("#login")).to_be_hidden()
    assert await cookie(context, "refresh_token") is not None
    await page.unroute("**/auth/refresh", unavailable)
    await page.get_by_role("button", name="Try again").click()
    await shows_account(page, user)

    await page.locator("#sessions tr.current").get_by_role("button", name="End").click()
    await shows_login(page)
    await expect(page.locator("#status")).to_have_text("This session has ended.")
    assert await context.cookies() == []
    assert await page.locator("#me-username").text_content() == ""


async def test_an_expired_access_token_is_renewed_and_the_work_goes_on(
    context: BrowserContext, page: Page, demo: str, new_user: NewUser, screenshot: Screenshot
) -> None:
    user = await new_user(demo)
    seen = refreshes(context)
    await log_in(page, demo, user)
    before = await cookie(context, "refresh_token")
    assert before is not None

    await expired(page)
    await expect(page.locator("#expiry")).to_contain_text("expired at")
    await screenshot(page, "demo-expired")
    await add_note(page, "written after the first expiry")
    assert seen and all(r.status == 200 for r in seen), [r.status for r in seen]
    after = await cookie(context, "refresh_token")
    assert after is not None and after["value"] != before["value"]  # rotated

    await expired(page)
    so_far = len(seen)
    # two calls at once (as when the page loads) find it expired: they share one refresh
    await page.evaluate("Promise.all([loadNotes(), loadSessions()])")
    assert len(seen) == so_far + 1 and seen[-1].status == 200, [r.status for r in seen]
    await add_note(page, "written after the second expiry")
    await expect(page.locator("#notes li")).to_have_count(2)
    await expect(page.locator("#sessions tr")).to_have_count(1)
    await shows_account(page, user)


async def test_two_tabs_refreshing_at_the_same_moment_both_stay_logged_in(
    context: BrowserContext, demo: str, new_user: NewUser
) -> None:
    user = await new_user(demo)
    first, second = await context.new_page(), await context.new_page()
    await log_in(first, demo, user)
    await second.goto(f"{demo}/demo")
    await shows_account(second, user)  # the second tab resumed the session of the first

    # Both refreshes are held until both are in flight, then let go together: the two
    # requests carry the same refresh cookie and reach the server at the same moment.
    held: list[Route] = []
    both = asyncio.Event()

    async def hold(route: Route) -> None:
        held.append(route)
        if len(held) == 2:
            both.set()
            await asyncio.gather(*(r.continue_() for r in held))

    seen = refreshes(context)
    await context.route("**/auth/refresh", hold)
    await expired(first)
    await expired(second)
    await asyncio.gather(
        first.get_by_role("button", name="Reload").click(),
        second.get_by_role("button", name="Reload").click(),
    )
    await asyncio.wait_for(both.wait(), timeout=15)
    await context.unroute("**/auth/refresh", hold)
    for tab in (first, second):
        await expect(tab.locator("#sessions tr")).to_have_count(1)
        await shows_account(tab, user)
    raced = seen[:2]  # the two held ones (a tab slower than a lifetime may refresh again)
    assert [r.status for r in raced] == [200, 200], [r.status for r in seen]
    answers = [await r.json() for r in raced]
    # one refresh token raced: the service gave both the same successor, revoking nothing
    assert answers[0]["access_token"] == answers[1]["access_token"]

    await add_note(first, "from the first tab")
    await add_note(second, "from the second tab")
    await expect(second.locator("#notes li")).to_have_count(2)
    await second.reload()
    await shows_account(second, user)

    # a logout in one tab logs the other out at its next call
    await first.get_by_role("button", name="Log out").click()
    await shows_login(first)
    await second.get_by_role("button", name="Reload").click()
    await shows_login(second)
    await expect(second.locator("#status")).to_have_text("Logged out: log in again.")


async def test_a_visitor_creates_an_account_logs_out_and_the_session_ends(
    context: BrowserContext, page: Page, demo: str
) -> None:
    user = User(f"visitor{uuid.uuid4().hex[:8]}", PASSWORD)
    await log_in(page, demo, user, button="Create account")
    await expect(page.locator("#status")).to_have_text(f"Account {user.username} created.")
    refresh = await cookie(context, "refresh_token")
    assert refresh is not None

    await page.get_by_role("button", name="Log out").click()
    await shows_login(page)
    await expect(page.locator("#status")).to_have_text("Logged out.")
    assert {c["name"] for c in await context.cookies()} == set()
    await page.reload()
    await shows_login(page)
    async with httpx.AsyncClient(base_url=demo) as http:
        gone = await http.post("/auth/refresh", json={"refresh_token": refresh["value"]})
    assert gone.status_code == 401, gone.text  # the session ended, not just the page's memory

    # the API's own words in the status line
    form = page.locator("#login")
    await form.get_by_label("Username").fill(user.username)
    await form.get_by_label("Password").fill(user.password)
    await form.get_by_role("button", name="Create account").click()
    await expect(page.locator("#status")).to_have_text("This username is already taken.")
    await expect(page.locator("#status")).to_have_class("error")
    await form.get_by_label("Password").fill("not the password")
    await form.get_by_role("button", name="Log in").click()
    await expect(page.locator("#status")).to_have_text("The username or password is wrong.")
    await shows_login(page)


async def test_no_script_ever_sees_the_refresh_token(
    context: BrowserContext, page: Page, demo: str, new_user: NewUser
) -> None:
    user = await new_user(demo)

    async def check() -> None:
        refresh = await cookie(context, "refresh_token")
        csrf = await cookie(context, "csrf_token")
        assert refresh is not None and csrf is not None
        assert (refresh["httpOnly"], refresh["sameSite"], refresh["path"]) == (
            True,
            "Strict",
            "/auth",
        )
        assert refresh["secure"] is False  # COOKIE_SECURE=false: plain http in the tests
        assert (csrf["httpOnly"], csrf["sameSite"], csrf["path"]) == (False, "Strict", "/")
        seen = await page.evaluate("document.cookie")
        assert "refresh_token" not in seen and refresh["value"] not in seen, seen
        assert f"csrf_token={csrf['value']}" in seen  # the readable half of the double submit
        stored = await page.evaluate("localStorage.length + sessionStorage.length")
        assert stored == 0  # the access token lives in a variable only

    await log_in(page, demo, user)
    await check()
    await expired(page)
    async with page.expect_response(is_refresh) as refreshed:
        await page.get_by_role("button", name="Reload").click()
    assert (await refreshed.value).status == 200
    await expect(page.locator("#sessions tr")).to_have_count(1)
    await check()
    await page.reload()
    await shows_account(page, user)
    await check()


# -- another origin of the same site ---------------------------------------------------------


def attack_page(foreign: ForeignOrigin, base: str) -> str:
    """A page of the foreign origin that tries to use the refresh cookie of `base`: fetches
    with credentials and the CSRF value it reads from document.cookie, and plain forms."""
    html = f"""<!doctype html>
<title>another origin</title>
<h1>A page of another origin</h1>
<form id="logout" method="post" action="{base}/auth/logout"><button>log out</button></form>
<form id="refresh" method="post" action="{base}/auth/refresh"><button>refresh</button></form>
<script>
  const API = {base!r};
  function csrf() {{
    const found = document.cookie.split("; ").find((c) => c.startsWith("csrf_token="));
    return found ? found.slice("csrf_token=".length) : null;
  }}
  async function call(path) {{
    try {{
      const response = await fetch(API + path, {{
        method: "POST",
        credentials: "include",
        headers: {{"X-CSRF-Token": csrf(), "Content-Type": "application/json"}},
        body: "{{}}",
      }});
      return {{status: response.status, body: await response.json().catch(() => null)}};
    }} catch (error) {{
      return {{blocked: String(error)}};
    }}
  }}
</script>
"""
    return foreign.serve(f"attack-{base.rsplit(':', 1)[1]}.html", html)


async def test_another_origin_can_neither_refresh_nor_log_out(
    context: BrowserContext, demo: str, foreign: ForeignOrigin, new_user: NewUser
) -> None:
    user = await new_user(demo)
    tab = await context.new_page()
    await log_in(tab, demo, user)
    csrf = await cookie(context, "csrf_token")
    assert csrf is not None

    other = await context.new_page()
    url = attack_page(foreign, demo)
    await other.goto(url)
    # ports don't separate cookies: the other origin reads the CSRF value...
    assert await other.evaluate("csrf()") == csrf["value"]
    for path in ("/auth/refresh", "/auth/logout"):
        # ...but its fetch needs a preflight that the service does not grant it
        answer = await other.evaluate("path => call(path)", path)
        assert "blocked" in answer or answer["status"] == 403, (path, answer)

    for form in ("refresh", "logout"):
        await other.goto(url)
        async with other.expect_response(f"{demo}/auth/{form}") as sent:
            await other.locator(f"#{form} button").click()
        response = await sent.value
        # a simple request: no preflight, and the browser did send the cookie (same site)
        assert "refresh_token=" in (await response.request.all_headers()).get("cookie", "")
        assert response.status == 403
        assert (await response.json())["error"] == "csrf_failed"

    # the session is untouched: it works, renews through the cookie, resumes on a reload
    await expired(tab)
    async with tab.expect_response(is_refresh) as refreshed:
        await tab.get_by_role("button", name="Reload").click()
    assert (await refreshed.value).status == 200
    await expect(tab.locator("#sessions tr")).to_have_count(1)
    await shows_account(tab, user)
    await tab.reload()
    await shows_account(tab, user)


async def test_an_origin_in_cors_origins_can_refresh_and_log_out(
    context: BrowserContext, trusting: str, foreign: ForeignOrigin, new_user: NewUser
) -> None:
    user = await new_user(trusting)
    tab = await context.new_page()
    await log_in(tab, trusting, user)

    other = await context.new_page()
    await other.goto(attack_page(foreign, trusting))
    refreshed = await other.evaluate("call('/auth/refresh')")
    assert refreshed["status"] == 200, refreshed
    assert refreshed["body"]["account_id"] and refreshed["body"]["access_token"]
    assert "refresh_token" not in refreshed["body"]  # still only in the cookie

    logged_out = await other.evaluate("call('/auth/logout')")
    assert logged_out["status"] == 204, logged_out
    assert await cookie(context, "refresh_token") is None
    await tab.reload()
    await shows_login(tab)
