"""Revocation across real worker processes: `sanic app.main --workers 2` over real HTTP.

Each worker keeps its own verified-token cache and its own copy of the revocation state.
A token is warmed on both workers, then its session is ended (logout, logout everywhere,
password change, admin disable); the old token sent at once over 40 fresh connections, so
spread over both workers, must be refused every single time, never served from a cache.

The figures printed (run with -s) are for the record, not assertions: how long the
revoking request took, and how soon after its answer the first refusal came back on a
fresh connection. Only a bound that catches a hang is asserted.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from tests import support

pytestmark = pytest.mark.e2e

TIMEOUT = httpx.Timeout(10.0)
PASSWORD = "correct horse battery"
NEW_PASSWORD = "another horse battery"
ADMIN_PASSWORD = "admin password 123"
WARM_CONNECTIONS = 20
PROBE_CONNECTIONS = 40
HANG = 5.0  # seconds: far above any sane revocation, far below a test timeout
_names = itertools.count()


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    with support.live_server(workers=2) as base:
        yield base


def client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=TIMEOUT)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def new_username(kind: str) -> str:
    return f"rev_{kind}{next(_names)}"


async def register_and_login(base: str, username: str) -> dict[str, Any]:
    async with client(base) as http:
        response = await http.post(
            "/auth/register", json={"username": username, "password": PASSWORD}
        )
        assert response.status_code == 201, response.text
    return await login(base, username, PASSWORD)


async def login(base: str, username: str, password: str) -> dict[str, Any]:
    async with client(base) as http:
        response = await http.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def fresh_connections(
    base: str, token: str, count: int
) -> list[tuple[float, httpx.Response]]:
    """GET /api/me with `token` over `count` new connections at once: (answered at, response).

    Every client is connected first (GET /health/live) so that the probes leave together and
    the kernel spreads the connections over both workers.
    """
    clients = [client(base) for _ in range(count)]
    try:
        warm = await asyncio.gather(*(c.get("/health/live") for c in clients))
        assert all(r.status_code == 200 for r in warm)

        async def probe(http: httpx.AsyncClient) -> tuple[float, httpx.Response]:
            response = await http.get("/api/me", headers=bearer(token))
            return time.perf_counter(), response

        return await asyncio.gather(*(probe(c) for c in clients))
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def brand_new_connections(
    base: str, token: str, count: int
) -> list[tuple[float, httpx.Response]]:
    """Like `fresh_connections`, but each probe opens its connection with the request."""

    async def probe() -> tuple[float, httpx.Response]:
        async with client(base) as http:
            response = await http.get("/api/me", headers=bearer(token))
        return time.perf_counter(), response

    return await asyncio.gather(*(probe() for _ in range(count)))


async def warm_up(base: str, tokens: dict[str, Any]) -> None:
    """Cache the token on the worker of one connection, then on both workers."""
    async with client(base) as http:
        for _ in range(3):
            response = await http.get("/api/me", headers=bearer(tokens["access_token"]))
            assert response.status_code == 200, response.text
            assert response.json()["session_id"] == tokens["session_id"]
    answers = await fresh_connections(base, tokens["access_token"], WARM_CONNECTIONS)
    for _, response in answers:
        assert response.status_code == 200, response.text


def assert_all_refused(answers: list[tuple[float, httpx.Response]], what: str) -> None:
    statuses = [response.status_code for _, response in answers]
    served = statuses.count(200)
    assert served == 0, f"{what}: {served} of {len(statuses)} fresh connections got 200"
    for _, response in answers:
        assert response.status_code == 401, (what, response.status_code, response.text)
        assert response.json()["error"] == "invalid_token", (what, response.text)
        assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def revoke_and_probe(
    base: str,
    kind: str,
    victims: list[dict[str, Any]],
    revoke: Callable[[httpx.AsyncClient], Awaitable[httpx.Response]],
    expected_status: int,
) -> httpx.Response:
    """Warm every victim's token on both workers, revoke, then probe at once."""
    for tokens in victims:
        await warm_up(base, tokens)

    # The probes' clients are built before (building one costs tens of ms: its SSL context);
    # their connections are opened only after the revocation was answered. One probe goes
    # alone at once (how soon a fresh connection is refused), then 40 together (all refused;
    # their timing is mostly this process starting 40 requests, so it is only printed).
    first_probe = client(base)
    probes = [client(base) for _ in range(PROBE_CONNECTIONS)]
    token = victims[0]["access_token"]
    try:
        async with client(base) as http:
            await http.get("/health/live")  # connected: time the revocation, not the handshake
            started = time.perf_counter()
            response = await revoke(http)
            answered = time.perf_counter()
        assert response.status_code == expected_status, response.text

        alone = await first_probe.get("/api/me", headers=bearer(token))
        first = time.perf_counter() - answered
        assert_all_refused([(0.0, alone)], f"{kind}: old access token, first fresh connection")

        async def probe(http: httpx.AsyncClient) -> tuple[float, httpx.Response]:
            answer = await http.get("/api/me", headers=bearer(token))
            return time.perf_counter(), answer

        sent = time.perf_counter()
        answers = await asyncio.gather(*(probe(http) for http in probes))
    finally:
        await asyncio.gather(*(http.aclose() for http in [first_probe, *probes]))
    assert_all_refused(answers, f"{kind}: old access token")
    last = max(at for at, _ in answers) - sent
    for other in victims[1:]:
        assert_all_refused(
            await brand_new_connections(base, other["access_token"], 10),
            f"{kind}: another session's token",
        )
    took = answered - started
    print(
        f"\n[{kind}] revoking request {took * 1000:.1f} ms; refused on a fresh connection "
        f"{first * 1000:.1f} ms after its answer; {PROBE_CONNECTIONS} more fresh connections "
        f"at once: all refused within {last * 1000:.1f} ms"
    )
    assert took < HANG, f"{kind} took {took:.2f} s"
    return response


async def test_logout_is_refused_on_every_worker(server: str) -> None:
    username = new_username("logout")
    tokens = await register_and_login(server, username)
    await revoke_and_probe(
        server,
        "logout",
        [tokens],
        lambda http: http.post("/auth/logout", headers=bearer(tokens["access_token"])),
        204,
    )
    # the same again, the warm-up and probes on brand-new connections only
    again = await login(server, username, PASSWORD)
    await warm_up(server, again)
    async with client(server) as http:
        response = await http.post("/auth/logout", headers=bearer(again["access_token"]))
    assert response.status_code == 204, response.text
    assert_all_refused(
        await brand_new_connections(server, again["access_token"], PROBE_CONNECTIONS),
        "logout, brand-new connections",
    )


async def test_logout_all_is_refused_on_every_worker(server: str) -> None:
    username = new_username("all")
    first = await register_and_login(server, username)
    second = await login(server, username, PASSWORD)
    await revoke_and_probe(
        server,
        "logout-all",
        [first, second],
        lambda http: http.post("/auth/logout-all", headers=bearer(second["access_token"])),
        204,
    )


async def test_password_change_is_refused_on_every_worker(server: str) -> None:
    username = new_username("pw")
    first = await register_and_login(server, username)
    second = await login(server, username, PASSWORD)
    response = await revoke_and_probe(
        server,
        "password change",
        [first, second],
        lambda http: http.post(
            "/auth/password",
            headers=bearer(first["access_token"]),
            json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        ),
        200,
    )
    # the session the change started works everywhere
    new = response.json()
    answers = await brand_new_connections(server, new["access_token"], 10)
    assert all(r.status_code == 200 for _, r in answers), [r.text for _, r in answers]


async def test_admin_disable_is_refused_on_every_worker(server: str) -> None:
    admin = new_username("admin")
    await run_cli("create-user", admin, "--admin", "--password-stdin", stdin=ADMIN_PASSWORD)
    admin_tokens = await login(server, admin, ADMIN_PASSWORD)
    assert "admin" in admin_tokens["scope"].split()

    victim = new_username("victim")
    first = await register_and_login(server, victim)
    second = await login(server, victim, PASSWORD)
    await revoke_and_probe(
        server,
        "admin disable",
        [first, second],
        lambda http: http.post(
            f"/api/admin/users/{victim}/disable", headers=bearer(admin_tokens["access_token"])
        ),
        204,
    )
    # the admin's own token still works on every worker
    answers = await brand_new_connections(server, admin_tokens["access_token"], 10)
    assert all(r.status_code == 200 for _, r in answers), [r.text for _, r in answers]


async def test_removing_a_scope_is_refused_on_every_worker_and_later_refreshes_narrow(
    server: str,
) -> None:
    """`set-scope` from the command line: the removed scope's live tokens stop at once on
    every worker (as a revocation does), the session lives on, and its next refresh issues
    only the scopes the account still has."""
    admin = new_username("demoted")
    await run_cli("create-user", admin, "--admin", "--password-stdin", stdin=ADMIN_PASSWORD)
    tokens = await login(server, admin, ADMIN_PASSWORD)
    assert "admin" in tokens["scope"].split()
    await warm_up(server, tokens)

    async def demote(http: httpx.AsyncClient) -> httpx.Response:
        await run_cli("set-scope", admin, "notes:read notes:write")
        return await http.get("/health/live")

    await revoke_and_probe(server, "scope removed", [tokens], demote, 200)
    async with client(server) as http:
        response = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert response.status_code == 200, response.text
        narrowed = response.json()
        assert narrowed["scope"] == "notes:read notes:write"
        assert narrowed["session_id"] == tokens["session_id"]
        admin_route = await http.post(
            f"/api/admin/users/{admin}/enable", headers=bearer(narrowed["access_token"])
        )
        assert admin_route.status_code == 403, admin_route.text
        notes = await http.get("/api/notes", headers=bearer(narrowed["access_token"]))
        assert notes.status_code == 200, notes.text


async def run_cli(*args: str, stdin: str = "") -> str:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "app.cli",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=support.server_env(),
        cwd=support.ROOT,
    )
    out, err = await asyncio.wait_for(process.communicate((stdin + "\n").encode()), timeout=60)
    assert process.returncode == 0, (args, out, err)
    return out.decode()
