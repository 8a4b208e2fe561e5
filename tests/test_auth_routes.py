"""The /auth routes as a client sees them: register, login, refresh, the OAuth 2.0 token
endpoint, and the error shape every route answers with (404, 405, 413, bad bodies)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import asyncpg
import httpx
import jwt
import pytest

from app import passwords
from tests.conftest import Api
from tests.support import TOKEN_FIELDS, live_server

PASSWORD = "correct horse"
DEFAULT_SCOPE = "notes:read notes:write"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


def content_type(response: Any) -> str:
    return str(response.headers.get("content-type", "")).split(";", 1)[0].strip().lower()


def assert_error(response: Any, status: int, error: str | None = None) -> dict[str, Any]:
    """The contract's error answer: the status, a JSON body of exactly error/description."""
    assert response.status == status, response.text
    assert content_type(response) == "application/json", response.headers
    body: dict[str, Any] = json.loads(response.text)
    assert set(body) == {"error", "error_description"}, body
    assert isinstance(body["error"], str) and body["error"]
    assert isinstance(body["error_description"], str) and body["error_description"]
    if error is not None:
        assert body["error"] == error, body
    return body


def assert_token_response(response: Any, scope: str = DEFAULT_SCOPE) -> dict[str, Any]:
    assert response.status == 200, response.text
    assert content_type(response) == "application/json"
    body: dict[str, Any] = response.json
    assert set(body) == TOKEN_FIELDS, body
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 600
    assert body["refresh_expires_in"] == 604800
    assert body["scope"] == scope
    assert body["access_token"] != body["refresh_token"]
    uuid.UUID(body["account_id"])
    uuid.UUID(body["session_id"])
    assert response.headers.get("cache-control") == "no-store"
    assert response.headers.get("pragma") == "no-cache"
    return body


def claims(token: str) -> dict[str, Any]:
    decoded: dict[str, Any] = jwt.decode(token, options={"verify_signature": False})
    return decoded


async def register(api: Api, username: Any, password: Any) -> Any:
    return await api.request(
        "POST", "/auth/register", json={"username": username, "password": password}
    )


# -- /auth/register ---------------------------------------------------------------------


async def test_register_answers_201_with_the_account(api: Api) -> None:
    response = await register(api, "Alice_1.x-y", PASSWORD)
    assert response.status == 201, response.text
    assert content_type(response) == "application/json"
    body = response.json
    assert set(body) == {"id", "username", "created_at"}
    uuid.UUID(body["id"])
    assert body["username"] == "Alice_1.x-y"
    created = datetime.fromisoformat(body["created_at"])
    assert created.tzinfo is not None
    tokens = await api.login("Alice_1.x-y", PASSWORD)
    assert tokens["account_id"] == body["id"]


@pytest.mark.parametrize(
    "username", ["abc", "a" * 32, "A.b", "x_-", "0123456789", "ABC.def_ghi-JKL"]
)
async def test_register_accepts_usernames_within_the_rules(api: Api, username: str) -> None:
    response = await register(api, username, PASSWORD)
    assert response.status == 201, response.text
    assert response.json["username"] == username


@pytest.mark.parametrize(
    "username",
    [
        "ab",
        "a" * 33,
        "",
        "al ice",
        " alice",
        "alice ",
        "alice!",
        "al@ce",
        "al/ice",
        "ålice",
        "alice\n",
        "ali\x00ce",
        "аlice",  # Cyrillic а
    ],
)
async def test_register_refuses_usernames_outside_the_rules(api: Api, username: str) -> None:
    assert_error(await register(api, username, PASSWORD), 400, "invalid_request")
    # nothing was created: a valid account can still take a near name
    assert (await register(api, "alice", PASSWORD)).status == 201


@pytest.mark.parametrize("second", ["alice", "ALICE", "aLiCe"])
async def test_register_username_unique_ignoring_case(api: Api, second: str) -> None:
    assert (await register(api, "Alice", PASSWORD)).status == 201
    assert_error(await register(api, second, "another password"), 409, "username_taken")
    # the first account is untouched: its password still works
    await api.login("Alice", PASSWORD)


@pytest.mark.parametrize(
    "password", ["12345678", "x" * 128, "é" * 128, "パスワード長いです", "😀" * 8]
)
async def test_register_accepts_passwords_of_8_to_128_characters(api: Api, password: str) -> None:
    assert (await register(api, "alice", password)).status == 201
    await api.login("alice", password)


@pytest.mark.parametrize("password", ["", "1234567", "😀" * 7, "x" * 129, "é" * 129])
async def test_register_refuses_passwords_outside_8_to_128_characters(
    api: Api, password: str
) -> None:
    assert_error(await register(api, "alice", password), 400, "invalid_request")
    assert (await register(api, "alice", PASSWORD)).status == 201


async def test_register_refuses_the_username_as_password(api: Api) -> None:
    assert_error(await register(api, "longusername", "longusername"), 400, "invalid_request")
    assert (await register(api, "longusername", PASSWORD)).status == 201


async def test_register_ignores_a_requested_scope(api: Api) -> None:
    response = await api.request(
        "POST",
        "/auth/register",
        json={"username": "mallory", "password": PASSWORD, "scope": "admin"},
    )
    assert response.status == 201, response.text
    tokens = await api.login("mallory", PASSWORD)
    assert tokens["scope"] == DEFAULT_SCOPE
    assert_error(
        await api.request(
            "POST",
            "/auth/login",
            json={"username": "mallory", "password": PASSWORD, "scope": "admin"},
        ),
        400,
        "invalid_scope",
    )


BAD_BODIES: list[tuple[str, dict[str, Any]]] = [
    ("missing username", {"json": {"password": PASSWORD}}),
    ("missing password", {"json": {"username": "alice"}}),
    ("empty object", {"json": {}}),
    ("username number", {"json": {"username": 12345, "password": PASSWORD}}),
    ("username null", {"json": {"username": None, "password": PASSWORD}}),
    ("username list", {"json": {"username": ["alice"], "password": PASSWORD}}),
    ("password number", {"json": {"username": "alice", "password": 12345678}}),
    ("password bool", {"json": {"username": "alice", "password": True}}),
    ("password object", {"json": {"username": "alice", "password": {"a": "b"}}}),
    ("malformed json", {"content": b'{"username": "alice", "password": ', "headers": JSON}),
    ("single quotes", {"content": b"{'username': 'alice'}", "headers": JSON}),
    ("json array", {"json": [{"username": "alice", "password": PASSWORD}]}),
    ("json string", {"json": "alice"}),
    ("json null", {"content": b"null", "headers": JSON}),
    ("json number", {"content": b"42", "headers": JSON}),
    ("empty body", {"content": b"", "headers": JSON}),
    ("no body", {}),
    ("not utf-8", {"content": b'{"username": "\xff\xfe", "password": "x"}', "headers": JSON}),
]


@pytest.mark.parametrize("route", ["/auth/register", "/auth/login"])
@pytest.mark.parametrize("kwargs", [b for _, b in BAD_BODIES], ids=[n for n, _ in BAD_BODIES])
async def test_bad_bodies_are_400_invalid_request(
    api: Api, route: str, kwargs: dict[str, Any]
) -> None:
    assert_error(await api.request("POST", route, **kwargs), 400, "invalid_request")


# -- /auth/login ------------------------------------------------------------------------


async def test_login_answers_the_token_response(api: Api) -> None:
    account = await api.register("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/login", json={"username": "alice", "password": PASSWORD}
    )
    body = assert_token_response(response)
    assert body["account_id"] == account["id"]
    access, refresh = claims(body["access_token"]), claims(body["refresh_token"])
    assert access["sub"] == refresh["sub"] == account["id"]
    assert access["sid"] == refresh["sid"] == body["session_id"]
    me = await api.request("GET", "/api/me", token=body["access_token"])
    assert me.status == 200
    assert me.json == {
        "id": account["id"],
        "username": "alice",
        "scope": DEFAULT_SCOPE,
        "session_id": body["session_id"],
    }


async def test_each_login_starts_its_own_session(api: Api) -> None:
    first = await api.user("alice", PASSWORD)
    second = await api.login("alice", PASSWORD)
    assert first["session_id"] != second["session_id"]
    assert first["account_id"] == second["account_id"]
    assert first["refresh_token"] != second["refresh_token"]


async def test_unknown_user_and_wrong_password_answer_the_same(api: Api, db: Any) -> None:
    await api.register("alice", PASSWORD)
    await api.register("carol", PASSWORD)
    await db.execute("UPDATE users SET disabled_at = now() WHERE username = 'carol'")
    answers = [
        await api.request("POST", "/auth/login", json={"username": u, "password": p})
        for u, p in [
            ("nobody", PASSWORD),
            ("alice", "wrong password"),
            ("alice", PASSWORD.upper()),
            ("carol", PASSWORD),  # disabled
        ]
    ]
    bodies = [assert_error(answer, 401, "invalid_grant") for answer in answers]
    assert all(body == bodies[0] for body in bodies), bodies
    assert all("access_token" not in answer.text for answer in answers)


async def test_login_narrows_the_scope(api: Api) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD, "scope": "notes:read"},
    )
    body = assert_token_response(response, scope="notes:read")
    assert claims(body["access_token"])["scope"] == "notes:read"
    token = body["access_token"]
    assert (await api.request("GET", "/api/me", token=token)).json["scope"] == "notes:read"
    assert (await api.request("GET", "/api/notes", token=token)).status == 200
    denied = await api.request("POST", "/api/notes", token=token, json={"title": "t", "body": ""})
    assert_error(denied, 403, "insufficient_scope")


@pytest.mark.parametrize(
    "scope", ["admin", "notes:delete", "notes:read admin", "openid", "NOTES:READ"]
)
async def test_login_refuses_scope_beyond_the_account(api: Api, scope: str) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/login", json={"username": "alice", "password": PASSWORD, "scope": scope}
    )
    assert_error(response, 400, "invalid_scope")
    assert "access_token" not in response.text


async def test_login_with_scope_of_wrong_type_is_invalid_request(api: Api) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/login",
        json={"username": "alice", "password": PASSWORD, "scope": ["notes:read"]},
    )
    assert_error(response, 400, "invalid_request")


async def test_overlong_password_is_refused_without_hashing(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    await api.register("alice", PASSWORD)
    checked: list[int] = []
    real_verify = passwords._verify

    def counting_verify(password_hash: str | None, password: str) -> tuple[bool, bool]:
        checked.append(len(password))
        return real_verify(password_hash, password)

    monkeypatch.setattr(passwords, "_verify", counting_verify)
    for path, body in [
        ("/auth/login", {"json": {"username": "alice", "password": "x" * 129}}),
        ("/auth/login", {"json": {"username": "nobody", "password": "x" * 60_000}}),
        (
            "/auth/token",
            {"data": {"grant_type": "password", "username": "alice", "password": "y" * 129}},
        ),
    ]:
        assert_error(await api.request("POST", path, **body), 400, "invalid_request")
    assert checked == []
    # the spy does see a password that is checked
    wrong = await api.request(
        "POST", "/auth/login", json={"username": "alice", "password": "z" * 128}
    )
    assert_error(wrong, 401, "invalid_grant")
    assert checked == [128]


# -- /auth/token (RFC 6749) -------------------------------------------------------------


async def test_token_password_grant_form_and_json(api: Api) -> None:
    account = await api.register("alice", PASSWORD)
    form = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert assert_token_response(form)["account_id"] == account["id"]
    as_json = await api.request(
        "POST",
        "/auth/token",
        json={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert assert_token_response(as_json)["account_id"] == account["id"]
    me = await api.request("GET", "/api/me", token=as_json.json["access_token"])
    assert me.json["session_id"] == as_json.json["session_id"]


async def test_token_form_with_charset_parameter(api: Api) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/token",
        content=b"grant_type=password&username=alice&password=correct+horse",
        headers={"content-type": "application/x-www-form-urlencoded; charset=UTF-8"},
    )
    assert_token_response(response)


async def test_token_password_grant_narrows_scope(api: Api) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/token",
        data={
            "grant_type": "password",
            "username": "alice",
            "password": PASSWORD,
            "scope": "notes:read",
        },
    )
    body = assert_token_response(response, scope="notes:read")
    assert claims(body["access_token"])["scope"] == "notes:read"


async def test_token_refresh_grant_form_and_json(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    form = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    first = assert_token_response(form)
    assert first["session_id"] == tokens["session_id"]
    assert first["refresh_token"] != tokens["refresh_token"]
    as_json = await api.request(
        "POST",
        "/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    second = assert_token_response(as_json)
    assert second["session_id"] == tokens["session_id"]
    assert second["refresh_token"] not in (first["refresh_token"], tokens["refresh_token"])
    assert (await api.request("GET", "/api/me", token=second["access_token"])).status == 200


async def test_token_refresh_grant_narrows_scope(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "notes:read",
        },
    )
    body = assert_token_response(response, scope="notes:read")
    assert claims(body["access_token"])["scope"] == "notes:read"


async def test_token_wrong_password_is_400_invalid_grant(api: Api) -> None:
    await api.register("alice", PASSWORD)
    for username, password in [("alice", "wrong password"), ("nobody", PASSWORD)]:
        response = await api.request(
            "POST",
            "/auth/token",
            data={"grant_type": "password", "username": username, "password": password},
        )
        assert_error(response, 400, "invalid_grant")


async def test_token_used_or_invalid_refresh_token_is_400_invalid_grant(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    assert (await api.refresh(tokens["refresh_token"])).status == 200
    for refresh_token in [
        tokens["refresh_token"],  # already used
        "not-a-jwt",
        tokens["access_token"],  # an access token is no refresh token
        tokens["refresh_token"][:-4] + "AAAA",
    ]:
        response = await api.request(
            "POST",
            "/auth/token",
            data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        )
        assert_error(response, 400, "invalid_grant")


@pytest.mark.parametrize(
    "grant_type", ["client_credentials", "authorization_code", "implicit", "PASSWORD", "refresh"]
)
async def test_token_unsupported_grant_type(api: Api, grant_type: str) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": grant_type, "username": "alice", "password": PASSWORD},
    )
    assert_error(response, 400, "unsupported_grant_type")


TOKEN_BAD_REQUESTS: list[tuple[str, dict[str, Any]]] = [
    ("no grant_type form", {"data": {"username": "alice", "password": PASSWORD}}),
    ("no grant_type json", {"json": {"username": "alice", "password": PASSWORD}}),
    ("grant_type number", {"json": {"grant_type": 1, "username": "alice", "password": PASSWORD}}),
    ("password grant without password", {"data": {"grant_type": "password", "username": "alice"}}),
    ("password grant without username", {"data": {"grant_type": "password", "password": PASSWORD}}),
    ("refresh grant without token", {"data": {"grant_type": "refresh_token"}}),
    ("refresh token not a string", {"json": {"grant_type": "refresh_token", "refresh_token": 7}}),
    (
        "repeated grant_type",
        {
            "content": b"grant_type=password&grant_type=password&username=alice"
            b"&password=correct+horse",
            "headers": FORM,
        },
    ),
    (
        "repeated username",
        {
            "content": b"grant_type=password&username=alice&username=bob&password=correct+horse",
            "headers": FORM,
        },
    ),
    (
        "repeated password",
        {
            "content": b"grant_type=password&username=alice&password=correct+horse"
            b"&password=correct+horse",
            "headers": FORM,
        },
    ),
    ("malformed json", {"content": b'{"grant_type": "password",', "headers": JSON}),
    ("json array", {"json": [["grant_type", "password"]]}),
    ("empty body", {"content": b"", "headers": FORM}),
    ("form not utf-8", {"content": b"grant_type=password&username=\xff", "headers": FORM}),
]


@pytest.mark.parametrize(
    "kwargs", [b for _, b in TOKEN_BAD_REQUESTS], ids=[n for n, _ in TOKEN_BAD_REQUESTS]
)
async def test_token_malformed_requests_are_400_invalid_request(
    api: Api, kwargs: dict[str, Any]
) -> None:
    await api.register("alice", PASSWORD)
    assert_error(await api.request("POST", "/auth/token", **kwargs), 400, "invalid_request")


async def test_token_repeated_refresh_token_parameter_does_not_spend_it(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    rt = tokens["refresh_token"]
    response = await api.request(
        "POST",
        "/auth/token",
        content=f"grant_type=refresh_token&refresh_token={rt}&refresh_token={rt}".encode(),
        headers=FORM,
    )
    assert_error(response, 400, "invalid_request")
    assert_token_response(await api.refresh(rt))


@pytest.mark.parametrize("scope", ["admin", "notes:read admin", "unknown"])
async def test_token_password_grant_invalid_scope(api: Api, scope: str) -> None:
    await api.register("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD, "scope": scope},
    )
    assert_error(response, 400, "invalid_scope")


async def test_token_refresh_grant_invalid_scope_keeps_the_refresh_token(api: Api) -> None:
    """RFC 6749 §5.2: an error answer grants nothing, so it must not spend the token either."""
    tokens = await api.user("alice", PASSWORD)
    response = await api.request(
        "POST",
        "/auth/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "scope": "admin",
        },
    )
    assert_error(response, 400, "invalid_scope")
    # the client corrects its request: the same refresh token must still be good
    retry = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    body = assert_token_response(retry)
    assert body["session_id"] == tokens["session_id"]


# -- /auth/refresh ----------------------------------------------------------------------


async def test_refresh_accepts_a_form_body(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
    )
    body = assert_token_response(response)
    assert body["session_id"] == tokens["session_id"]
    assert body["refresh_token"] != tokens["refresh_token"]
    assert body["access_token"] != tokens["access_token"]


async def test_refresh_bad_bodies_are_400_invalid_request(api: Api) -> None:
    await api.user("alice", PASSWORD)
    for kwargs in [
        {"json": {}},
        {"json": {"refresh_token": 12}},
        {"json": ["x"]},
        {"content": b"{nope", "headers": JSON},
        {"content": b"", "headers": JSON},
        {"data": {"token": "x"}},
    ]:
        assert_error(await api.request("POST", "/auth/refresh", **kwargs), 400, "invalid_request")


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


async def test_register_stores_nothing_on_a_refused_request(
    api: Api, db: asyncpg.Connection
) -> None:
    for kwargs in [
        {"json": {"username": "alice", "password": "short"}},
        {"json": {"username": "a", "password": PASSWORD}},
        {"json": {"username": "alice", "password": "alice"}},
    ]:
        assert (await api.request("POST", "/auth/register", **kwargs)).status == 400
    assert await db.fetchval("SELECT count(*) FROM users") == 0
