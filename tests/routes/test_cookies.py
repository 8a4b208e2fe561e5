"""Cookie delivery of the refresh token (browser apps) and its CSRF check, in-process.

Cookies are read from each answer's `Set-Cookie` headers and sent back by hand in a `Cookie`
header (the test client's own jar is emptied first), so that every test says exactly what a
browser would hold and send."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from typing import Any

import httpx
import pytest

from tests.support import COOKIE_TOKEN_FIELDS, Api

CSRF = "X-CSRF-Token"


def jar_of(response: Any) -> dict[str, dict[str, Any]]:
    """Each Set-Cookie of an answer: its value and attributes (lower-case names)."""
    found: dict[str, dict[str, Any]] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            attributes = {key: value for key, value in morsel.items() if value}
            found[name] = {"value": morsel.value, "raw": header, **attributes}
    return found


class Browser:
    """What a browser holds for the service: the two cookies, and sends them like one."""

    def __init__(self, api: Api):
        self.api = api
        self.cookies: dict[str, str] = {}

    def take(self, response: Any) -> dict[str, dict[str, Any]]:
        jar = jar_of(response)
        for name, cookie in jar.items():
            if cookie.get("max-age") == "0":
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie["value"]
        return jar

    async def send(
        self,
        method: str,
        path: str,
        *,
        csrf: str | None | bool = True,
        cookies: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> Any:
        """`csrf=True`: the X-CSRF-Token header from the csrf_token cookie, as the page does."""
        sent = self.cookies if cookies is None else cookies
        headers = dict(headers or {})
        if sent and "Cookie" not in headers:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in sent.items())
        if csrf is True:
            csrf = self.cookies.get("csrf_token")
        if isinstance(csrf, str):
            headers[CSRF] = csrf
        self.api.client.cookies.clear()
        response = await self.api.request(method, path, headers=headers, **kwargs)
        self.take(response)
        return response

    async def login(self) -> dict[str, Any]:
        await self.api.register()
        response = await self.send(
            "POST",
            "/auth/login",
            csrf=None,
            json={"username": "alice", "password": "correct horse", "token_delivery": "cookie"},
        )
        assert response.status == 200, response.text
        body: dict[str, Any] = response.json
        return body

    async def refresh(self, **kwargs: Any) -> Any:
        return await self.send("POST", "/auth/refresh", **kwargs)


@pytest.fixture
def browser(make_api: Callable[..., Api]) -> Browser:
    return Browser(make_api(cookie_secure=False))


async def test_login_puts_the_refresh_token_in_an_httponly_cookie(api: Api) -> None:
    browser = Browser(api)
    body = await browser.login()
    assert "refresh_token" not in body
    assert set(body) == COOKIE_TOKEN_FIELDS
    response_cookies = browser.cookies
    assert set(response_cookies) == {"refresh_token", "csrf_token"}
    assert response_cookies["csrf_token"] == body["csrf_token"]
    me = await api.request("GET", "/api/me", token=body["access_token"])
    assert me.status == 200


async def test_the_cookies_attributes(api: Api) -> None:
    await api.register()
    response = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": "correct horse", "token_delivery": "cookie"},
    )
    jar = jar_of(response)
    refresh, csrf = jar["refresh_token"], jar["csrf_token"]
    assert refresh["httponly"] is True and refresh["secure"] is True
    assert refresh["samesite"] == "Strict" and refresh["path"] == "/auth"
    assert refresh["max-age"] == str(response.json["refresh_expires_in"])
    assert "httponly" not in csrf, "the page must be able to read the CSRF value"
    assert csrf["secure"] is True and csrf["samesite"] == "Strict" and csrf["path"] == "/"
    assert response.headers["cache-control"] == "no-store"


async def test_cookie_secure_false_for_local_http(browser: Browser) -> None:
    await browser.api.register()
    response = await browser.api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": "correct horse", "token_delivery": "cookie"},
    )
    for cookie in jar_of(response).values():
        assert "secure" not in cookie, cookie["raw"]


async def test_body_delivery_stays_the_default(api: Api) -> None:
    await api.register()
    for extra in ({}, {"token_delivery": "body"}):
        response = await api.request(
            "POST", "/auth/login", json={"username": "alice", "password": "correct horse", **extra}
        )
        assert response.status == 200
        assert "refresh_token" in response.json and "csrf_token" not in response.json
        assert response.headers.get_list("set-cookie") == []


async def test_an_unknown_delivery_is_a_400_before_anything_happens(api: Api) -> None:
    await api.register()
    for path, body in (
        ("/auth/login", {"username": "alice", "password": "correct horse"}),
        ("/auth/refresh", {"refresh_token": "x"}),
    ):
        for bad in ("Cookie", "header", 1, True, None):
            if bad is None:
                continue
            response = await api.request("POST", path, json={**body, "token_delivery": bad})
            assert response.status == 400, (path, bad, response.text)
            assert response.json["error"] == "invalid_request"
    events = await api.request("GET", "/auth/events", token=(await api.login())["access_token"])
    assert [event["type"] for event in events.json["events"]] == ["login"]


async def test_refresh_through_the_cookie_rotates_it(browser: Browser) -> None:
    body = await browser.login()
    first = dict(browser.cookies)
    for body_sent in ({}, {"token_delivery": "cookie"}, None):
        response = await browser.refresh(json=body_sent) if body_sent is not None else None
        if response is None:  # no body at all, as fetch() with no body sends
            response = await browser.refresh()
        assert response.status == 200, response.text
        assert "refresh_token" not in response.json
        assert response.json["session_id"] == body["session_id"]
        assert response.json["csrf_token"] == body["csrf_token"], "one CSRF value a session"
    assert browser.cookies["refresh_token"] != first["refresh_token"]
    assert browser.cookies["csrf_token"] == first["csrf_token"]
    me = await browser.api.request("GET", "/api/me", token=response.json["access_token"])
    assert me.status == 200


async def test_a_retry_with_the_old_cookie_gets_the_same_successor(browser: Browser) -> None:
    """A response lost on the way: the browser still holds the old cookie and tries again."""
    await browser.login()
    old = dict(browser.cookies)
    first = await browser.refresh()
    successor = browser.cookies["refresh_token"]
    again = await browser.refresh(cookies=old, csrf=old["csrf_token"])
    assert again.status == 200
    assert browser.cookies["refresh_token"] == successor
    assert again.json["access_token"] == first.json["access_token"]


async def test_reuse_through_the_cookie_revokes_and_clears(browser: Browser) -> None:
    await browser.login()
    old = dict(browser.cookies)
    await browser.refresh()
    newest = await browser.refresh()
    assert newest.status == 200
    access = newest.json["access_token"]
    stolen = await browser.send("POST", "/auth/refresh", cookies=old, csrf=old["csrf_token"])
    assert stolen.status == 401 and stolen.json["error"] == "invalid_grant"
    cleared = jar_of(stolen)
    assert cleared["refresh_token"]["max-age"] == "0" and cleared["csrf_token"]["max-age"] == "0"
    assert cleared["refresh_token"]["path"] == "/auth" and cleared["csrf_token"]["path"] == "/"
    assert (await browser.api.request("GET", "/api/me", token=access)).status == 401


@pytest.mark.parametrize(
    "case",
    ["no header", "header differs", "made-up pair", "foreign origin", "null origin", "two cookies"],
)
async def test_a_cookie_refresh_failing_the_csrf_check_changes_nothing(
    browser: Browser, case: str
) -> None:
    await browser.login()
    held = dict(browser.cookies)
    cookies, csrf, headers = dict(held), held["csrf_token"], {}
    if case == "no header":
        csrf = None
    elif case == "header differs":
        csrf = "x" + held["csrf_token"][1:]
    elif case == "made-up pair":  # a page that can plant cookies but knows no session's value
        cookies["csrf_token"] = csrf = "attacker-chosen-value"
    elif case == "foreign origin":
        headers["Origin"] = "http://127.0.0.1:1"
    elif case == "null origin":
        headers["Origin"] = "null"
    elif case == "two cookies":  # a second one planted with a narrower path, sent first
        headers["Cookie"] = (
            f"refresh_token=planted; refresh_token={held['refresh_token']}; "
            f"csrf_token={held['csrf_token']}"
        )
    refused = await browser.send(
        "POST", "/auth/refresh", cookies=cookies, csrf=csrf, headers=headers
    )
    assert refused.status == 403, refused.text
    assert refused.json["error"] == "csrf_failed"
    assert refused.headers.get_list("set-cookie") == [], "a refused check clears nothing"
    # nothing changed: the cookie still refreshes once, as new (not a retry, not reuse)
    browser.cookies = held
    fine = await browser.refresh()
    assert fine.status == 200
    events = await browser.api.request("GET", "/auth/events", token=fine.json["access_token"])
    assert [event["type"] for event in events.json["events"]] == ["refresh", "login"]


async def test_own_and_listed_origins_pass(make_api: Callable[..., Api]) -> None:
    browser = Browser(make_api(cookie_secure=False, cors_origins=("https://app.example.com",)))
    await browser.login()
    for origin in ("http://mockserver:1234", "https://app.example.com"):
        response = await browser.refresh(headers={"Origin": origin})
        assert response.status == 200, (origin, response.text)
    other = await browser.refresh(headers={"Origin": "https://app.example.com.evil.test"})
    assert other.status == 403


async def test_a_cookie_the_service_refuses_is_cleared(browser: Browser) -> None:
    await browser.login()
    browser.cookies["refresh_token"] = "not.a.token"
    response = await browser.refresh()
    assert response.status == 401 and response.json["error"] == "invalid_grant"
    assert browser.cookies == {}


async def test_no_token_and_no_cookie_is_a_400(browser: Browser) -> None:
    for sent in ({"json": {}}, {}):
        response = await browser.refresh(csrf=None, **sent)
        assert response.status == 400 and response.json["error"] == "invalid_request"
        assert "refresh_token" in response.json["error_description"]


async def test_a_cookie_token_is_never_answered_in_the_body(browser: Browser) -> None:
    await browser.login()
    response = await browser.refresh(json={"token_delivery": "body"})
    assert response.status == 400
    assert "refresh_token" not in response.text


async def test_a_body_token_may_move_into_the_cookie(api: Api) -> None:
    tokens = await api.user()
    response = await api.request(
        "POST",
        "/auth/refresh",
        json={"refresh_token": tokens["refresh_token"], "token_delivery": "cookie"},
    )
    assert response.status == 200 and "refresh_token" not in response.json
    assert set(jar_of(response)) == {"refresh_token", "csrf_token"}


async def test_the_token_endpoint_delivers_to_the_cookie(api: Api) -> None:
    await api.register()
    response = await api.request(
        "POST",
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": "correct horse",
            "token_delivery": "cookie",
        },
    )
    assert response.status == 200 and "refresh_token" not in response.json
    jar = jar_of(response)
    assert jar["csrf_token"]["value"] == response.json["csrf_token"]


async def test_logout_through_the_cookie(browser: Browser) -> None:
    body = await browser.login()
    refused = await browser.send("POST", "/auth/logout", csrf=None)
    assert refused.status == 403 and refused.json["error"] == "csrf_failed"
    assert (await browser.api.request("GET", "/api/me", token=body["access_token"])).status == 200
    held = dict(browser.cookies)
    response = await browser.send("POST", "/auth/logout")
    assert response.status == 204
    assert browser.cookies == {}, "both cookies cleared"
    assert (await browser.api.request("GET", "/api/me", token=body["access_token"])).status == 401
    again = await browser.send("POST", "/auth/refresh", cookies=held, csrf=held["csrf_token"])
    assert again.status == 401
    # logging out again with the dead cookie just clears it
    browser.cookies = held
    assert (await browser.send("POST", "/auth/logout")).status == 204
    assert browser.cookies == {}


async def test_logout_with_a_refresh_token_in_the_body(api: Api) -> None:
    tokens = await api.user()
    response = await api.request(
        "POST", "/auth/logout", json={"refresh_token": tokens["refresh_token"]}
    )
    assert response.status == 204
    assert (await api.request("GET", "/api/me", token=tokens["access_token"])).status == 401
    bad = await api.request("POST", "/auth/logout", json={"refresh_token": "nope"})
    assert bad.status == 401 and bad.json["error"] == "invalid_grant"
    nothing = await api.request("POST", "/auth/logout")
    assert nothing.status == 401 and nothing.json["error"] == "missing_token"
    assert nothing.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_a_bearer_logout_clears_that_sessions_cookies(browser: Browser) -> None:
    body = await browser.login()
    response = await browser.send(
        "POST",
        "/auth/logout",
        csrf=None,
        headers={"Authorization": f"Bearer {body['access_token']}"},
    )
    assert response.status == 204
    assert browser.cookies == {}


async def test_a_password_change_can_answer_in_the_cookie(browser: Browser) -> None:
    body = await browser.login()
    old = dict(browser.cookies)
    response = await browser.send(
        "POST",
        "/auth/password",
        csrf=None,
        headers={"Authorization": f"Bearer {body['access_token']}"},
        json={
            "current_password": "correct horse",
            "new_password": "battery staple",
            "token_delivery": "cookie",
        },
    )
    assert response.status == 200 and "refresh_token" not in response.json
    assert browser.cookies["refresh_token"] != old["refresh_token"]
    assert (await browser.refresh()).status == 200


async def test_another_origin_cant_log_a_browser_into_a_session(
    make_api: Callable[..., Api],
) -> None:
    """Login CSRF: a page of another origin posting someone's credentials with cookie delivery
    (a text/plain form can carry JSON) would leave the victim's browser in the attacker's
    session. Refused before the login happens; listed origins and body delivery are fine."""
    api = make_api(cors_origins=("https://app.example.com",))
    tokens = await api.user()
    credentials = {"username": "alice", "password": "correct horse", "token_delivery": "cookie"}
    foreign = {"Origin": "https://evil.example.com", "Content-Type": "text/plain"}
    for path, sent in (
        ("/auth/login", {"json": credentials}),
        ("/auth/token", {"data": {**credentials, "grant_type": "password"}}),
        (
            "/auth/refresh",
            {"json": {"refresh_token": tokens["refresh_token"], "token_delivery": "cookie"}},
        ),
    ):
        headers = dict(foreign)
        if "data" in sent:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        refused = await api.request("POST", path, headers=headers, **sent)
        assert refused.status == 403 and refused.json["error"] == "csrf_failed", refused.text
        assert refused.headers.get_list("set-cookie") == []
    listed = await api.request(
        "POST", "/auth/login", json=credentials, headers={"Origin": "https://app.example.com"}
    )
    assert listed.status == 200 and "csrf_token" in listed.json
    body_mode = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": "correct horse"},
        headers=foreign,
    )
    assert body_mode.status == 200, "no cookie is set: nothing to forge"
    events = await api.request("GET", "/auth/events", token=listed.json["access_token"])
    kinds = [event["type"] for event in events.json["events"]]
    assert kinds == ["login", "login", "login"], "the refused ones logged nobody in"
    # the body token the refused refresh carried was not spent
    again = await api.request(
        "POST", "/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert again.status == 200


@pytest.mark.parametrize(
    "planted",
    ["__Secure-refresh_token=planted", "__Host-refresh_token=planted", "__Secure-csrf_token=x"],
)
async def test_a_prefixed_twin_is_refused_not_read_instead(browser: Browser, planted: str) -> None:
    """Sanic's request.cookies answers `__Host-`/`__Secure-` cookies for the plain name; a
    sibling subdomain can plant those over https. Refused, and nothing ends or clears."""
    body = await browser.login()
    held = dict(browser.cookies)
    real = "; ".join(f"{name}={value}" for name, value in held.items())
    for path in ("/auth/refresh", "/auth/logout"):
        refused = await browser.send("POST", path, headers={"Cookie": f"{planted}; {real}"})
        assert refused.status == 403 and refused.json["error"] == "csrf_failed", refused.text
        assert refused.headers.get_list("set-cookie") == []
    assert (await browser.api.request("GET", "/api/me", token=body["access_token"])).status == 200


async def test_cookies_in_two_headers_are_all_seen(browser: Browser) -> None:
    """A proxy may pass HTTP/2's split Cookie headers on unjoined: a second refresh_token in
    the second header is still a second one."""
    await browser.login()
    held = dict(browser.cookies)
    browser.api.client.cookies.clear()
    request = httpx.Request(  # built by hand: the client's own merging keeps one header
        "POST",
        f"{browser.api.client.base_url}/auth/refresh",
        headers=[
            ("Cookie", f"refresh_token={held['refresh_token']}"),
            ("Cookie", f"csrf_token={held['csrf_token']}; refresh_token=another"),
            (CSRF, held["csrf_token"]),
        ],
    )
    response = await browser.api.client.send(request)
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "csrf_failed"


@pytest.mark.parametrize("where", ["header", "cookie"])
async def test_bytes_that_are_not_ascii_are_a_403_not_a_500(browser: Browser, where: str) -> None:
    body = await browser.login()
    held = dict(browser.cookies)
    odd = "\xff\xfe".encode("latin-1")
    cookie = f"refresh_token={held['refresh_token']}; csrf_token=".encode() + (
        odd if where == "cookie" else held["csrf_token"].encode()
    )
    header = odd if where == "header" else held["csrf_token"].encode()
    for path, token in (("/auth/refresh", None), ("/auth/logout", None), ("/auth/logout", body)):
        headers = [(b"cookie", cookie), (CSRF.encode(), header)]
        if token is not None:  # a bearer logout looks at the csrf cookie too
            headers.append((b"authorization", f"Bearer {token['access_token']}".encode()))
        response = await browser.api.request("POST", path, headers=headers)
        if token is None:
            assert response.status == 403, (path, response.text)
        else:
            assert response.status == 204, response.text


async def test_a_cross_site_request_without_origin_is_refused(browser: Browser) -> None:
    await browser.login()
    response = await browser.refresh(headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403 and response.json["error"] == "csrf_failed"
    assert (await browser.refresh(headers={"Sec-Fetch-Site": "same-origin"})).status == 200


async def test_a_body_token_logout_clears_that_sessions_cookies(browser: Browser) -> None:
    """Ending another session by its refresh token leaves this browser's cookies alone;
    ending the cookies' own session clears them."""
    await browser.login()
    other = await browser.api.user("bob", "correct horse")
    kept = await browser.send(
        "POST", "/auth/logout", csrf=None, json={"refresh_token": other["refresh_token"]}
    )
    assert kept.status == 204 and kept.headers.get_list("set-cookie") == []
    own = await browser.send(
        "POST",
        "/auth/logout",
        csrf=None,
        json={"refresh_token": browser.cookies["refresh_token"]},
    )
    assert own.status == 204
    assert browser.cookies == {}


async def test_ending_the_cookies_own_session_from_the_list_clears_them(browser: Browser) -> None:
    body = await browser.login()
    bearer = {"Authorization": f"Bearer {body['access_token']}"}
    second = await browser.api.login()  # another session of the user: ending it keeps them
    kept = await browser.send(
        "DELETE", f"/auth/sessions/{second['session_id']}", csrf=None, headers=bearer
    )
    assert kept.status == 204 and kept.headers.get_list("set-cookie") == []
    own = await browser.send(
        "DELETE", f"/auth/sessions/{body['session_id']}", csrf=None, headers=bearer
    )
    assert own.status == 204
    assert browser.cookies == {}, "the cookies of the ended session are cleared"
