"""The OAuth 2.0 token endpoint (RFC 6749) with form and JSON bodies, and the bodies
/auth/refresh accepts."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support import Api
from tests.support.asserts import assert_default_token_response, assert_error, claims

PASSWORD = "correct horse"
FORM = {"content-type": "application/x-www-form-urlencoded"}
JSON = {"content-type": "application/json"}


# -- /auth/token (RFC 6749) -------------------------------------------------------------


async def test_token_password_grant_form_and_json(api: Api) -> None:
    account = await api.register("alice", PASSWORD)
    form = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert assert_default_token_response(form)["account_id"] == account["id"]
    as_json = await api.request(
        "POST",
        "/auth/token",
        json={"grant_type": "password", "username": "alice", "password": PASSWORD},
    )
    assert assert_default_token_response(as_json)["account_id"] == account["id"]
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
    assert_default_token_response(response)


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
    body = assert_default_token_response(response, scope="notes:read")
    assert claims(body["access_token"])["scope"] == "notes:read"


async def test_token_refresh_grant_form_and_json(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    form = await api.request(
        "POST",
        "/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    first = assert_default_token_response(form)
    assert first["session_id"] == tokens["session_id"]
    assert first["refresh_token"] != tokens["refresh_token"]
    as_json = await api.request(
        "POST",
        "/auth/token",
        json={"grant_type": "refresh_token", "refresh_token": first["refresh_token"]},
    )
    second = assert_default_token_response(as_json)
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
    body = assert_default_token_response(response, scope="notes:read")
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
    second = await api.refresh(tokens["refresh_token"])
    assert second.status == 200
    assert (await api.refresh(second.json["refresh_token"])).status == 200
    for refresh_token in [
        tokens["refresh_token"],  # already used, and so was its successor
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
    assert_default_token_response(await api.refresh(rt))


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
    body = assert_default_token_response(retry)
    assert body["session_id"] == tokens["session_id"]


# -- /auth/refresh ----------------------------------------------------------------------


async def test_refresh_accepts_a_form_body(api: Api) -> None:
    tokens = await api.user("alice", PASSWORD)
    response = await api.request(
        "POST", "/auth/refresh", data={"refresh_token": tokens["refresh_token"]}
    )
    body = assert_default_token_response(response)
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
