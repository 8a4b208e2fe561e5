"""End to end: a real `sanic app.main --workers 2` subprocess, driven over real HTTP.

One server for the whole module per Redis deployment (one Redis, a Redis Cluster, Sentinel);
`clean_state` still empties the database and the test Redis's prefix after every test. Some
steps go through real curl when it is installed (what the README shows), through httpx
otherwise.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import live_server
from tests.support.topologies import KINDS, redis_deployment

pytestmark = pytest.mark.e2e

TIMEOUT = httpx.Timeout(10.0)
CURL = shutil.which("curl")
PASSWORD = "correct horse battery"
_names = itertools.count()


@pytest.fixture(scope="module", params=KINDS)
def server(database: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """The base URL of a two-worker server on this run's database and Redis prefix, on each
    Redis deployment: the test's Redis, a local Redis Cluster, a Sentinel set-up."""
    with redis_deployment(request.param) as (_, env), live_server(workers=2, **env) as base:
        yield base


def new_username() -> str:
    return f"e2e_user{next(_names)}"


def client(base: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=base, timeout=TIMEOUT)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_error(response: httpx.Response, status: int, error: str | None = None) -> dict[str, Any]:
    """The contract's error shape: `{"error", "error_description"}`, JSON, the given status."""
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json"), response.headers
    body: dict[str, Any] = response.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    if error is not None:
        assert body["error"] == error, body
    return body


def assert_token_response(body: dict[str, Any], headers: Any) -> None:
    assert headers["cache-control"] == "no-store", dict(headers)
    assert headers["pragma"] == "no-cache", dict(headers)
    assert body["token_type"] == "Bearer", body
    assert body["expires_in"] == 600, body
    assert body["refresh_expires_in"] == 604800, body
    for field in ("access_token", "refresh_token", "scope", "account_id", "session_id"):
        assert isinstance(body[field], str) and body[field], (field, body)
    assert body["access_token"] != body["refresh_token"]


async def step(
    base: str,
    method: str,
    path: str,
    *,
    json_body: dict[str, Any] | None = None,
    form: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """One request through real curl when installed, else httpx: (status, headers, body).

    Header names come back lower-cased.
    """
    headers = dict(headers or {})
    if CURL is None:
        async with client(base) as http:
            response = await http.request(method, path, json=json_body, data=form, headers=headers)
        return (
            response.status_code,
            {k.lower(): v for k, v in response.headers.items()},
            response.content,
        )

    with tempfile.TemporaryDirectory() as scratch:
        head_file, body_file = Path(scratch) / "head", Path(scratch) / "body"
        args = [
            CURL,
            "--silent",
            "--show-error",
            "--max-time",
            "10",
            "-X",
            method,
            "--dump-header",
            str(head_file),
            "--output",
            str(body_file),
            "--write-out",
            "%{http_code}",
            "-H",
            "Expect:",
        ]
        for name, value in headers.items():
            args += ["-H", f"{name}: {value}"]
        if json_body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", json.dumps(json_body)]
        for name, value in (form or {}).items():
            args += ["--data-urlencode", f"{name}={value}"]  # a form, as curl -d sends it
        args.append(base + path)
        process = await asyncio.create_subprocess_exec(
            *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=15)
        assert process.returncode == 0, stderr.decode(errors="replace")
        status = int(stdout.decode().strip())
        parsed: dict[str, str] = {}
        for line in head_file.read_text(errors="replace").splitlines()[1:]:
            name, sep, value = line.partition(":")
            if sep:
                parsed[name.strip().lower()] = value.strip()
        return status, parsed, body_file.read_bytes()


async def register(base: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    async with client(base) as http:
        response = await http.post(
            "/auth/register", json={"username": username, "password": password}
        )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def login(base: str, username: str, password: str = PASSWORD) -> dict[str, Any]:
    async with client(base) as http:
        response = await http.post("/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def user_tokens(base: str) -> tuple[str, dict[str, Any]]:
    username = new_username()
    await register(base, username)
    return username, await login(base, username)


# -- the README flow ---------------------------------------------------------------------


async def test_readme_flow(server: str) -> None:
    username = new_username()

    # register, with curl when there is one
    status, _, raw = await step(
        server, "POST", "/auth/register", json_body={"username": username, "password": PASSWORD}
    )
    assert status == 201, raw
    account = json.loads(raw)
    assert account["username"] == username
    assert isinstance(account["id"], str) and account["id"]
    assert isinstance(account["created_at"], str) and account["created_at"]

    # login, with curl when there is one: a token response that no cache may keep
    status, headers, raw = await step(
        server, "POST", "/auth/login", json_body={"username": username, "password": PASSWORD}
    )
    assert status == 200, raw
    assert headers["content-type"].startswith("application/json")
    tokens = json.loads(raw)
    assert_token_response(tokens, headers)
    assert tokens["account_id"] == account["id"]
    assert tokens["scope"] == "notes:read notes:write"

    # the caller, with curl when there is one
    status, _, raw = await step(server, "GET", "/api/me", headers=bearer(tokens["access_token"]))
    assert status == 200, raw
    me = json.loads(raw)
    assert me == {
        "id": account["id"],
        "username": username,
        "scope": "notes:read notes:write",
        "session_id": tokens["session_id"],
    }

    async with client(server) as http:
        # refresh: a new pair in the same session
        response = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert response.status_code == 200, response.text
        fresh = response.json()
        assert_token_response(fresh, response.headers)
        assert fresh["session_id"] == tokens["session_id"]
        assert fresh["account_id"] == account["id"]
        assert fresh["refresh_token"] != tokens["refresh_token"]
        assert fresh["access_token"] != tokens["access_token"]

        # a retry with the old refresh token (a lost response) gets the same pair again
        response = await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
        assert response.status_code == 200, response.text
        assert response.json()["refresh_token"] == fresh["refresh_token"]
        assert response.json()["access_token"] == fresh["access_token"]

        # the new access token works
        response = await http.get("/api/me", headers=bearer(fresh["access_token"]))
        assert response.status_code == 200, response.text
        assert response.json()["username"] == username
        assert response.json()["session_id"] == tokens["session_id"]

        # and without a token: the RFC 6750 challenge, the contract's body
        response = await http.get("/api/me")
        assert_error(response, 401, "missing_token")
        assert response.headers["www-authenticate"] == 'Bearer realm="api"'


# -- the OAuth 2.0 token endpoint ----------------------------------------------------------


async def test_token_endpoint_with_form_bodies(server: str) -> None:
    username = new_username()
    account = await register(server, username)

    # grant_type=password as a form, the way an OAuth client (or curl -d) sends it
    status, headers, raw = await step(
        server,
        "POST",
        "/auth/token",
        form={"grant_type": "password", "username": username, "password": PASSWORD},
    )
    assert status == 200, raw
    tokens = json.loads(raw)
    assert_token_response(tokens, headers)
    assert tokens["account_id"] == account["id"]
    assert tokens["scope"] == "notes:read notes:write"

    async with client(server) as http:
        # grant_type=refresh_token as a form (httpx `data=` sends x-www-form-urlencoded)
        response = await http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
        )
        assert response.request.headers["content-type"] == "application/x-www-form-urlencoded"
        assert response.status_code == 200, response.text
        fresh = response.json()
        assert_token_response(fresh, response.headers)
        assert fresh["session_id"] == tokens["session_id"]
        assert fresh["refresh_token"] != tokens["refresh_token"]

        response = await http.get("/api/me", headers=bearer(fresh["access_token"]))
        assert response.status_code == 200, response.text
        assert response.json()["username"] == username

        # RFC 6749 §5.2 errors on this endpoint: 400, not 401 (a token that is no refresh
        # token; a wrong password; an unknown grant; no grant)
        response = await http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": fresh["access_token"]},
        )
        assert_error(response, 400, "invalid_grant")
        response = await http.post(
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": "wrong password!"},
        )
        assert_error(response, 400, "invalid_grant")
        response = await http.post("/auth/token", data={"grant_type": "client_credentials"})
        assert_error(response, 400, "unsupported_grant_type")
        response = await http.post("/auth/token", data={"username": username})
        assert_error(response, 400, "invalid_request")

        # a narrower scope may be asked for, never a wider one
        response = await http.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": username,
                "password": PASSWORD,
                "scope": "notes:read",
            },
        )
        assert response.status_code == 200, response.text
        assert response.json()["scope"] == "notes:read"
        response = await http.post(
            "/auth/token",
            data={
                "grant_type": "password",
                "username": username,
                "password": PASSWORD,
                "scope": "notes:read admin",
            },
        )
        assert_error(response, 400, "invalid_scope")

        # the winner of the form refresh still rotates once more
        response = await http.post(
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": fresh["refresh_token"]},
        )
        assert response.status_code == 200, response.text
        assert response.json()["session_id"] == tokens["session_id"]


# -- the refresh race across workers -------------------------------------------------------


RACERS = 24


ROUNDS = 6


async def test_concurrent_refreshes_all_get_the_one_successor(server: str) -> None:
    """RACERS refreshes with one token across both workers, in rounds that stagger the
    racers differently: every one gets the same pair, and that pair goes on working."""
    _, tokens = await user_tokens(server)
    refresh_token = tokens["refresh_token"]
    for round_ in range(ROUNDS):
        stagger = (0.0, 0.0005, 0.002, 0.01, 0.03, 0.0)[round_]

        async def racer(
            http: httpx.AsyncClient,
            index: int,
            stagger: float = stagger,
            token: str = refresh_token,
        ) -> httpx.Response:
            await asyncio.sleep(stagger * (index % 4))
            return await http.post("/auth/refresh", json={"refresh_token": token})

        # Each racer its own client, so its own connection; open them all first so that the
        # refreshes leave together and the kernel spreads the connections over both workers.
        clients = [client(server) for _ in range(RACERS)]
        try:
            warm = await asyncio.gather(*(c.get("/health/live") for c in clients))
            assert all(r.status_code == 200 for r in warm)
            responses = await asyncio.gather(*(racer(c, i) for i, c in enumerate(clients)))
        finally:
            await asyncio.gather(*(c.aclose() for c in clients))

        statuses = [r.status_code for r in responses]
        assert statuses == [200] * RACERS, (round_, [(r.status_code, r.text) for r in responses])
        pairs = {(r.json()["access_token"], r.json()["refresh_token"]) for r in responses}
        assert len(pairs) == 1, f"round {round_}: {len(pairs)} successors minted"
        pair = responses[0].json()
        assert_token_response(pair, responses[0].headers)
        assert pair["session_id"] == tokens["session_id"]
        assert pair["refresh_token"] != refresh_token

        async with client(server) as http:
            response = await http.get("/api/me", headers=bearer(pair["access_token"]))
            assert response.status_code == 200, response.text
        refresh_token = pair["refresh_token"]  # the next round races with the successor

    # the last successor rotates once more, in the same session
    async with client(server) as http:
        response = await http.post("/auth/refresh", json={"refresh_token": refresh_token})
        assert response.status_code == 200, response.text
        assert response.json()["session_id"] == tokens["session_id"]


async def test_a_refresh_whose_response_is_lost_is_retried_safely(server: str) -> None:
    """The request reaches the server and the client goes away before the answer (a mobile
    timeout): in rounds with the client leaving at different moments, the retry with the
    token it still holds always gets the one successor, and the session lives on."""
    _, tokens = await user_tokens(server)
    host, port = server.removeprefix("http://").split(":")
    for round_, linger in enumerate((0.0, 0.001, 0.005, 0.02, 0.1)):
        body = json.dumps({"refresh_token": tokens["refresh_token"]}).encode()
        request = (
            f"POST /auth/refresh HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(request)
        await writer.drain()
        await asyncio.sleep(linger)
        writer.transport.abort()  # the answer, if any, is never read
        await asyncio.sleep(0.05)

        async with client(server) as http:
            retried = [
                await http.post("/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
                for _ in range(2)
            ]
            for response in retried:
                assert response.status_code == 200, (round_, response.status_code, response.text)
            assert retried[0].json()["refresh_token"] == retried[1].json()["refresh_token"]
            fresh = retried[0].json()
            assert fresh["session_id"] == tokens["session_id"]
            response = await http.get("/api/me", headers=bearer(fresh["access_token"]))
            assert response.status_code == 200, (round_, response.text)
        tokens = fresh


# -- the error shape over real HTTP --------------------------------------------------------


async def test_error_shape_over_http(server: str) -> None:
    async with client(server) as http:
        response = await http.get("/no/such/route")
        assert_error(response, 404, "not_found")

        response = await http.get("/auth/login")
        assert_error(response, 405, "method_not_allowed")

        response = await http.delete("/api/me")
        assert_error(response, 405, "method_not_allowed")

        response = await http.post(
            "/auth/login",
            content=b'{"username": "alice", "password": ',
            headers={"Content-Type": "application/json"},
        )
        assert_error(response, 400, "invalid_request")

        response = await http.post(
            "/auth/register", content=b"[1, 2, 3]", headers={"Content-Type": "application/json"}
        )
        assert_error(response, 400, "invalid_request")

        response = await http.post("/auth/register", json={"username": 42, "password": PASSWORD})
        assert_error(response, 400, "invalid_request")

        response = await http.get("/api/me", headers={"Authorization": "Basic abc"})
        assert_error(response, 400, "invalid_request")

        response = await http.get("/api/me", headers=bearer("not.a.jwt"))
        assert_error(response, 401, "invalid_token")
        assert response.headers["www-authenticate"].startswith(
            'Bearer realm="api", error="invalid_token"'
        )

    # 100 KiB: over the 64 KiB request limit
    async with client(server) as http:
        big = json.dumps({"username": "bigbody", "password": "p" * (100 * 1024)}).encode()
        response = await http.post(
            "/auth/register", content=big, headers={"Content-Type": "application/json"}
        )
        assert_error(response, 413, "payload_too_large")

    # a 20 KiB header: over the 16 KiB header limit; 413 (Sanic's answer) or 431, same shape
    async with client(server) as http:
        response = await http.get("/health/live", headers={"X-Padding": "a" * (20 * 1024)})
        assert response.status_code in (413, 431), (response.status_code, response.text)
        assert_error(response, response.status_code)

    # the server is still fine afterwards
    async with client(server) as http:
        response = await http.get("/health/live")
        assert response.status_code == 200


# -- health and docs -------------------------------------------------------------------------


async def test_health_and_docs(server: str) -> None:
    async with client(server) as http:
        response = await http.get("/health/live")
        assert response.status_code == 200
        assert response.json() == {"status": "ok"}

        response = await http.get("/health")
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok", "postgres": "ok", "redis": "ok"}

        response = await http.get("/docs", follow_redirects=True)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/html")
        assert "swagger" in response.text.lower()

        response = await http.get("/docs/openapi.json")
        assert response.status_code == 200, response.text
        spec = response.json()

    assert str(spec.get("openapi", "")).startswith("3."), spec.get("openapi")
    paths = spec["paths"]
    for path in (
        "/auth/register",
        "/auth/login",
        "/auth/refresh",
        "/auth/token",
        "/api/me",
        "/api/notes",
        "/health",
        "/health/live",
    ):
        assert path in paths, (path, sorted(paths))

    schemes = spec["components"]["securitySchemes"]
    bearer_names = [
        name
        for name, scheme in schemes.items()
        if scheme.get("type") == "http" and str(scheme.get("scheme", "")).lower() == "bearer"
    ]
    assert bearer_names, schemes

    def security_names(operation: dict[str, Any]) -> set[str]:
        requirements = operation.get("security", spec.get("security", []))
        return {name for requirement in requirements for name in requirement}

    assert security_names(paths["/api/me"]["get"]) & set(bearer_names), paths["/api/me"]["get"]
    assert security_names(paths["/api/notes"]["get"]) & set(bearer_names)
    assert not security_names(paths["/auth/login"]["post"]) & set(bearer_names)
    assert not security_names(paths["/health/live"]["get"]) & set(bearer_names)


# -- any worker accepts the token -------------------------------------------------------------


FRESH_CONNECTIONS = 40


async def test_token_works_over_many_fresh_connections(server: str) -> None:
    username, tokens = await user_tokens(server)

    async def one_call() -> httpx.Response:
        async with client(server) as http:  # a new client: a new connection
            return await http.get("/api/me", headers=bearer(tokens["access_token"]))

    responses: list[httpx.Response] = []
    for _ in range(FRESH_CONNECTIONS // 10):  # ten at a time, so several are open at once
        responses += await asyncio.gather(*(one_call() for _ in range(10)))

    assert len(responses) == FRESH_CONNECTIONS
    assert [r.status_code for r in responses] == [200] * FRESH_CONNECTIONS, [
        (r.status_code, r.text) for r in responses if r.status_code != 200
    ]
    assert {r.json()["username"] for r in responses} == {username}
    assert {r.json()["session_id"] for r in responses} == {tokens["session_id"]}
