"""The refresh cookie raced over real HTTP against `sanic app.main --workers 2`: two tabs (or
twenty) refreshing with one cookie get the one successor, and a logout racing refreshes
leaves no working token, whatever the interleaving of the round."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from http.cookies import SimpleCookie

import httpx
import pytest

from tests.support import live_server

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
RACERS = 16
STAGGERS = (0.0, 0.0005, 0.002, 0.01, 0.03)
_names = itertools.count()


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    with live_server(workers=2, COOKIE_SECURE="false") as base:
        yield base


def cookies_of(response: httpx.Response) -> dict[str, str]:
    found: dict[str, str] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed: SimpleCookie = SimpleCookie()
        parsed.load(header)
        found.update({name: morsel.value for name, morsel in parsed.items()})
    return found


def sent(cookies: dict[str, str]) -> dict[str, str]:
    """The headers a page sends with the cookies it holds (X-CSRF-Token read from one)."""
    return {
        "Cookie": "; ".join(f"{name}={value}" for name, value in cookies.items()),
        "X-CSRF-Token": cookies["csrf_token"],
    }


async def cookie_login(base: str) -> tuple[dict[str, str], str]:
    username = f"cookie_racer{next(_names)}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        registered = await http.post(
            "/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert registered.status_code == 201, registered.text
        response = await http.post(
            "/auth/login",
            json={"username": username, "password": PASSWORD, "token_delivery": "cookie"},
        )
        assert response.status_code == 200, response.text
        return cookies_of(response), response.json()["session_id"]


async def racing(
    base: str, requests: list[tuple[str, dict[str, str], float]]
) -> list[httpx.Response]:
    """POST each (path, headers, delay) from its own connection, opened first so that they
    leave together and spread over both workers."""
    clients = [httpx.AsyncClient(base_url=base, timeout=10) for _ in requests]
    try:
        await asyncio.gather(*(c.get("/health/live") for c in clients))

        async def one(
            http: httpx.AsyncClient, path: str, headers: dict[str, str], delay: float
        ) -> httpx.Response:
            await asyncio.sleep(delay)
            return await http.post(path, headers=headers)

        return await asyncio.gather(
            *(one(c, *request) for c, request in zip(clients, requests, strict=True))
        )
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def test_tabs_refreshing_with_one_cookie_get_one_successor(server: str) -> None:
    held, sid = await cookie_login(server)
    for round_, stagger in enumerate(STAGGERS):
        # the page's own tabs, and a same-site page without the CSRF header among them
        requests = [("/auth/refresh", sent(held), stagger * (i % 4)) for i in range(RACERS)]
        forged = {"Cookie": sent(held)["Cookie"]}
        requests += [("/auth/refresh", forged, stagger * i) for i in range(4)]
        responses = await racing(server, requests)
        tabs, forgeries = responses[:RACERS], responses[RACERS:]
        assert [r.status_code for r in tabs] == [200] * RACERS, (
            round_,
            [(r.status_code, r.text) for r in tabs],
        )
        assert {r.status_code for r in forgeries} == {403}, [r.text for r in forgeries]
        successors = {cookies_of(r)["refresh_token"] for r in tabs}
        assert len(successors) == 1, f"round {round_}: {len(successors)} successors minted"
        assert {r.json()["session_id"] for r in tabs} == {sid}
        assert {cookies_of(r)["csrf_token"] for r in tabs} == {held["csrf_token"]}
        (successor,) = successors
        assert successor != held["refresh_token"]
        held = {**held, "refresh_token": successor}
        async with httpx.AsyncClient(base_url=server, timeout=10) as http:
            me = await http.get(
                "/api/me", headers={"Authorization": f"Bearer {tabs[0].json()['access_token']}"}
            )
            assert me.status_code == 200, me.text


async def test_a_cookie_logout_racing_refreshes_leaves_nothing_working(server: str) -> None:
    """Whatever was minted while the logout ran, once it answered 204 no token of the
    session works: neither the cookie nor any access token a racing refresh got."""
    for round_, stagger in enumerate(STAGGERS):
        held, _ = await cookie_login(server)
        requests = [("/auth/refresh", sent(held), stagger * i) for i in range(6)]
        requests.insert(3, ("/auth/logout", sent(held), stagger * 2))
        responses = await racing(server, requests)
        logout = responses[3]
        assert logout.status_code == 204, (round_, logout.text)
        refreshes = responses[:3] + responses[4:]
        assert {r.status_code for r in refreshes} <= {200, 401}, [r.text for r in refreshes]
        async with httpx.AsyncClient(base_url=server, timeout=10) as http:
            for response in refreshes:
                if response.status_code == 200:
                    me = await http.get(
                        "/api/me",
                        headers={"Authorization": f"Bearer {response.json()['access_token']}"},
                    )
                    assert me.status_code == 401, (round_, "a racing refresh outlived the logout")
                    successor = {**held, "refresh_token": cookies_of(response)["refresh_token"]}
                    again = await http.post("/auth/refresh", headers=sent(successor))
                    assert again.status_code == 401, (round_, again.text)
            again = await http.post("/auth/refresh", headers=sent(held))
            assert again.status_code == 401, (round_, again.text)
