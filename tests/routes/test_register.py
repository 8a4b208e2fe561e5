"""POST /auth/register as a client sees it: the username and password rules, uniqueness
ignoring case, and nothing stored on a refused request."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import pytest

from tests.support import DEFAULT_SCOPE, Api
from tests.support.asserts import assert_error, content_type, register

PASSWORD = "correct horse"
JSON = {"content-type": "application/json"}


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


async def test_registrations_are_limited_per_address(api: Api) -> None:
    """Each registration costs an argon2 hash: twenty an hour from one address."""
    for index in range(20):
        created = await register(api, f"user{index}", PASSWORD)
        assert created.status == 201, created.text
    refused = await register(api, "user20", PASSWORD)
    assert_error(refused, 429, "rate_limited")
    assert 0 < int(refused.headers["retry-after"]) <= 3600
    transport = api.client._transport
    previous, transport.client = transport.client, ("10.1.2.3", 40000)
    try:
        assert (await register(api, "user21", PASSWORD)).status == 201  # another address
    finally:
        transport.client = previous
