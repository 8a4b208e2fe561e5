"""The error shape every route answers with: 404, 405, 413, and odd bodies never a 5xx."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from tests.support import Api, live_server
from tests.support.asserts import assert_error, content_type

PASSWORD = "correct horse"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


# -- errors of any route ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/auth/nope"),
        ("GET", "/api/nope"),
        ("GET", "/api/notes/a/b"),
        ("DELETE", "/auth"),
    ],
)
async def test_unknown_path_is_404_not_found(api: Api, method: str, path: str) -> None:
    assert_error(await api.request(method, path), 404, "not_found")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/auth/login"),
        ("PUT", "/auth/register"),
        ("GET", "/auth/token"),
        ("DELETE", "/auth/refresh"),
        ("DELETE", "/api/notes"),
        ("POST", "/api/me"),
        ("PATCH", "/api/notes/00000000-0000-0000-0000-000000000000"),
    ],
)
async def test_wrong_method_is_405(api: Api, method: str, path: str) -> None:
    assert_error(await api.request(method, path), 405)


async def test_405_names_the_allowed_methods(api: Api) -> None:
    """RFC 9110 §15.5.6: a 405 answer MUST carry an Allow header."""
    response = await api.request("GET", "/auth/login")
    assert_error(response, 405)
    allow = {m.strip().upper() for m in response.headers.get("allow", "").split(",") if m.strip()}
    assert "POST" in allow, response.headers


async def test_body_over_64_kib_is_413(database: str) -> None:
    """The size limit is the server's: checked on `sanic app.main`, the way it is served."""
    limit = 64 * 1024
    with live_server(workers=1) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            padding = "x" * limit
            big = json.dumps({"username": "alice", "password": PASSWORD, "pad": padding})
            for path, body, headers in [
                ("/auth/register", big.encode(), JSON),
                ("/auth/login", big.encode(), JSON),
                ("/auth/token", b"grant_type=password&pad=" + b"x" * limit, FORM),
                ("/api/notes", big.encode(), JSON),
            ]:
                response = await client.post(path, content=body, headers=headers)
                assert response.status_code == 413, (path, response.text)
                assert content_type(response) == "application/json"
                assert set(response.json()) == {"error", "error_description"}
            # exactly at the limit is not too large: it gets the ordinary answer
            at_limit = b'{"username": "' + b"a" * (limit - 16) + b'"}'
            assert len(at_limit) == limit
            response = await client.post("/auth/register", content=at_limit, headers=JSON)
            assert response.status_code == 400, response.text
            assert response.json()["error"] == "invalid_request"


HOSTILE_JSON = [
    ("deeply nested array", b"[" * 50_000 + b"]" * 50_000),
    ("deeply nested object", b'{"a":' * 20_000 + b"1" + b"}" * 20_000),
    ("huge integer", b'{"username": ' + b"9" * 5000 + b', "password": "x"}'),
    ("lone surrogate username", b'{"username": "al\\ud800ice", "password": "correct horse"}'),
    ("lone surrogate password", b'{"username": "alice", "password": "correct \\udfff horse"}'),
    ("nul in username", b'{"username": "al\\u0000ice", "password": "correct horse"}'),
    ("nul in password", b'{"username": "alice", "password": "correct\\u0000horse"}'),
    ("infinity", b'{"username": "alice", "password": Infinity}'),
    ("bom", b'\xef\xbb\xbf{"username": "alice", "password": "correct horse"}'),
]


@pytest.mark.parametrize("route", ["/auth/register", "/auth/login", "/auth/refresh", "/auth/token"])
@pytest.mark.parametrize("body", [b for _, b in HOSTILE_JSON], ids=[n for n, _ in HOSTILE_JSON])
async def test_odd_json_bodies_never_get_a_5xx(api: Api, route: str, body: bytes) -> None:
    response = await api.request("POST", route, content=body, headers=JSON)
    assert response.status < 500, response.text
    if response.status >= 400:
        assert_error(response, response.status)
        assert response.status in (400, 401, 409), response.text


@pytest.mark.parametrize(
    "username",
    ["al\x00ice", "alice\x00", "\x00", "al\ud800ice"],
    ids=["nul", "nul-end", "only-nul", "surrogate"],
)
async def test_login_with_impossible_username_is_refused_not_5xx(api: Api, username: str) -> None:
    await api.register("alice", PASSWORD)
    body = json.dumps({"username": username, "password": PASSWORD}).encode()
    response = await api.request("POST", "/auth/login", content=body, headers=JSON)
    assert response.status in (400, 401), response.text
    assert_error(response, response.status)
    form = await api.request(
        "POST",
        "/auth/token",
        content=b"grant_type=password&username=al%00ice&password=correct+horse",
        headers=FORM,
    )
    assert_error(form, 400)


async def test_register_with_unencodable_password_is_not_5xx(api: Api) -> None:
    body = b'{"username": "alice", "password": "correct \\ud800 horse"}'
    response = await api.request("POST", "/auth/register", content=body, headers=JSON)
    assert response.status in (201, 400), response.text
    if response.status == 400:
        assert_error(response, 400, "invalid_request")


async def test_a_forwarded_address_that_is_no_address_is_not_a_500(
    make_api: Callable[..., Api],
) -> None:
    """Behind a proxy, the forwarding header may carry anything: not an address, not UTF-8."""
    api = make_api(proxies_count=1)
    await api.register("alice", PASSWORD)
    for forwarded in (b"\\xff\\xfe1.2.3.4", b"_" + b"a" * 3000, b"not an address"):
        answer = await api.request(
            "POST",
            "/auth/login",
            json={"username": "alice", "password": PASSWORD},
            headers={"X-Forwarded-For": forwarded},  # type: ignore[dict-item]
        )
        assert answer.status == 200, answer.text
        listed = await api.request("GET", "/auth/sessions", token=answer.json["access_token"])
        assert listed.json["sessions"][0]["ip"] is None


async def test_a_database_not_created_yet_is_a_503(
    make_api: Callable[..., Api], database: str
) -> None:
    """DATABASE_URL naming a database nobody created (`make migrate` not run): the contract's
    503 for a dependency that isn't there, not a 500 with a traceback."""
    missing = database.rsplit("/", 1)[0] + "/jwt_refresh_never_created"
    api = make_api(database_url=missing)
    response = await api.request(
        "POST", "/auth/register", json={"username": "alice", "password": "correct horse"}
    )
    assert response.status == 503, response.text
    assert response.json["error"] == "temporarily_unavailable"
    assert "retry-after" in response.headers
