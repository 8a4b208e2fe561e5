"""The OpenAPI document (its security schemes, named schemas, operationIds) and the /docs pages:
Swagger UI served by the app itself, nothing from another origin, under a strict CSP."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
from collections.abc import Iterator
from typing import Any, get_args, get_type_hints

import pytest

from app.accounts.responses import TokenResponse
from app.blueprints.common import dataclass_schema
from app.errors import ERROR_SCHEMA
from app.scopes import SCOPES
from tests.support import Api
from tests.support.asserts import assert_default_token_response

PASSWORD = "correct horse"
METHODS = {"get", "put", "post", "delete", "patch"}
TOKEN_REF = {"$ref": "#/components/schemas/TokenResponse"}
ERROR_REF = {"$ref": "#/components/schemas/Error"}

# the contract's names: a generated client's method names, stable
OPERATION_IDS = {
    ("post", "/auth/register"): "register",
    ("post", "/auth/login"): "login",
    ("post", "/auth/refresh"): "refresh",
    ("post", "/auth/token"): "token",
    ("post", "/auth/revoke"): "revoke",
    ("post", "/auth/introspect"): "introspect",
    ("post", "/auth/logout"): "logout",
    ("post", "/auth/logout-all"): "logoutAll",
    ("post", "/auth/password"): "changePassword",
    ("get", "/auth/sessions"): "listSessions",
    ("get", "/auth/events"): "listEvents",
    ("delete", "/auth/sessions/{session_id}"): "endSession",
    ("get", "/api/me"): "getMe",
    ("get", "/api/notes"): "listNotes",
    ("post", "/api/notes"): "createNote",
    ("get", "/api/notes/{note_id}"): "getNote",
    ("put", "/api/notes/{note_id}"): "updateNote",
    ("delete", "/api/notes/{note_id}"): "deleteNote",
    ("post", "/api/admin/users/{username}/disable"): "disableUser",
    ("post", "/api/admin/users/{username}/enable"): "enableUser",
    ("get", "/api/admin/users/{username}/events"): "listUserEvents",
    ("get", "/.well-known/jwks.json"): "jwks",
    ("get", "/.well-known/oauth-authorization-server"): "authorizationServerMetadata",
    ("get", "/health"): "health",
    ("get", "/health/live"): "live",
}
# what each bearer route needs; every other operation is public
SCOPES_NEEDED = {
    ("get", "/api/me"): [],
    ("get", "/api/notes"): ["notes:read"],
    ("post", "/api/notes"): ["notes:write"],
    ("get", "/api/notes/{note_id}"): ["notes:read"],
    ("put", "/api/notes/{note_id}"): ["notes:write"],
    ("delete", "/api/notes/{note_id}"): ["notes:write"],
    ("post", "/api/admin/users/{username}/disable"): ["admin"],
    ("post", "/api/admin/users/{username}/enable"): ["admin"],
    ("get", "/api/admin/users/{username}/events"): ["admin"],
    ("post", "/auth/introspect"): ["introspect"],
    ("post", "/auth/logout"): [],
    ("post", "/auth/logout-all"): [],
    ("post", "/auth/password"): [],
    ("get", "/auth/sessions"): [],
    ("get", "/auth/events"): [],
    ("delete", "/auth/sessions/{session_id}"): [],
}
# routes a caller may also call without an access token (with a refresh token instead)
TOKEN_OPTIONAL = {("post", "/auth/logout")}
TOKEN_ANSWERS = {"login", "refresh", "token", "changePassword"}
# a URL of another origin: a scheme, or a protocol-relative //host
EXTERNAL = re.compile(r"\b[a-z][a-z0-9+.-]*://|(?<![:\w])//[\w.-]", re.IGNORECASE)


@pytest.fixture
async def spec(api: Api) -> dict[str, Any]:
    response = await api.request("GET", "/docs/openapi.json")
    assert response.status == 200, response.text
    document: dict[str, Any] = response.json
    return document


def operations(spec: dict[str, Any]) -> Iterator[tuple[tuple[str, str], dict[str, Any]]]:
    for path, items in spec["paths"].items():
        for method, operation in items.items():
            if method in METHODS:
                yield (method, path), operation


def schemas(node: Any) -> Iterator[Any]:
    """Every value under a `schema` key, anywhere below `node`."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "schema":
                yield value
            yield from schemas(value)
    elif isinstance(node, list):
        for value in node:
            yield from schemas(value)


def refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from refs(value)


# -- security schemes --------------------------------------------------------------------


async def test_an_oauth2_password_scheme_beside_bearer(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    oauth2 = schemes["oauth2"]
    assert oauth2["type"] == "oauth2"
    assert set(oauth2["flows"]) == {"password"}
    password = oauth2["flows"]["password"]
    assert password["tokenUrl"] == "/auth/token"
    assert list(password["scopes"]) == list(SCOPES)
    assert all(isinstance(text, str) and text for text in password["scopes"].values())


async def test_protected_operations_accept_either_scheme(spec: dict[str, Any]) -> None:
    assert not spec.get("security")  # no default: each operation says
    for key, operation in operations(spec):
        if key not in SCOPES_NEEDED:
            assert "security" not in operation, (key, operation["security"])
            continue
        expected = [{"bearer": []}, {"oauth2": SCOPES_NEEDED[key]}]
        if key in TOKEN_OPTIONAL:
            expected.append({})
        assert operation.get("security") == expected, key
        assert "401" in operation["responses"], key
    documented = {key for key, _ in operations(spec)}
    assert set(SCOPES_NEEDED) <= documented


async def test_every_scheme_and_scope_a_route_names_is_declared(spec: dict[str, Any]) -> None:
    schemes = spec["components"]["securitySchemes"]
    declared = set(schemes["oauth2"]["flows"]["password"]["scopes"])
    for key, operation in operations(spec):
        for requirement in operation.get("security", []):
            assert set(requirement) <= set(schemes), key
            assert set(requirement.get("oauth2", [])) <= declared, key


# -- named schemas -------------------------------------------------------------------------


async def test_token_response_and_error_are_named_schemas(spec: dict[str, Any]) -> None:
    named = spec["components"]["schemas"]
    assert named["TokenResponse"] == dataclass_schema(TokenResponse)
    assert named["Error"] == ERROR_SCHEMA
    # the fields that may be None (left out of the answer then) are the ones not required
    hints = get_type_hints(TokenResponse)
    fields = [field.name for field in dataclasses.fields(TokenResponse)]
    assert list(named["TokenResponse"]["properties"]) == fields
    optional = [name for name in fields if type(None) in get_args(hints[name])]
    assert named["TokenResponse"]["required"] == [name for name in fields if name not in optional]


async def test_operations_refer_to_the_named_schemas(spec: dict[str, Any]) -> None:
    ids = {operation["operationId"]: operation for _, operation in operations(spec)}
    for name in TOKEN_ANSWERS:
        ok = ids[name]["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == TOKEN_REF, name
    errors = 0
    for key, operation in operations(spec):
        for status, response in operation["responses"].items():
            schema = response.get("content", {}).get("application/json", {}).get("schema")
            if status.startswith(("4", "5")) and key != ("get", "/health"):
                assert schema == ERROR_REF, (key, status, schema)
                errors += 1
    assert errors > 50
    # nowhere an inline copy: each is defined once, under components
    named = list(spec["components"]["schemas"].values())
    assert not [schema for schema in schemas(spec["paths"]) if schema in named]


async def test_every_ref_resolves(spec: dict[str, Any]) -> None:
    found = set(refs(spec))
    assert found >= {TOKEN_REF["$ref"], ERROR_REF["$ref"]}
    for ref in found:
        node: Any = spec
        for part in ref.removeprefix("#/").split("/"):
            node = node[part]
        assert isinstance(node, dict) and node, ref


# -- operationIds ------------------------------------------------------------------------


async def test_every_operation_has_its_readable_unique_id(spec: dict[str, Any]) -> None:
    ids = {key: operation.get("operationId") for key, operation in operations(spec)}
    assert ids == OPERATION_IDS
    assert len(set(ids.values())) == len(ids)
    assert all(re.fullmatch(r"[a-z][a-zA-Z]*", name) for name in ids.values())


async def test_metrics_and_the_docs_pages_are_not_operations(spec: dict[str, Any]) -> None:
    assert not [path for path in spec["paths"] if path.startswith(("/metrics", "/docs"))]


# -- the token endpoint takes what Swagger UI's password flow sends ---------------------------

SWAGGER_HEADERS = {
    "Accept": "application/json, text/plain, */*",
    "X-Requested-With": "XMLHttpRequest",
}


def basic(client_id: str, secret: str = "") -> dict[str, str]:
    credentials = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {credentials}"}


@pytest.mark.parametrize(
    ("extra", "headers"),
    [
        ({}, basic("")),  # its default: "Authorization header", both fields left empty
        ({}, basic("swagger")),
        ({"client_id": "swagger"}, {}),  # "Request body"
        ({"client_id": "swagger", "client_secret": "s"}, {}),
        ({}, {}),
        ({"scope": ""}, basic("")),
    ],
    ids=[
        "basic-empty",
        "basic-client-id",
        "body-client-id",
        "body-client-secret",
        "no-client",
        "blank-scope",
    ],
)
async def test_token_endpoint_takes_swagger_uis_password_form(
    api: Api, extra: dict[str, str], headers: dict[str, str]
) -> None:
    await api.register("alice", PASSWORD)
    # no scope ticked: Swagger UI leaves the field out
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    response = await api.request(
        "POST", "/auth/token", data=form | extra, headers=SWAGGER_HEADERS | headers
    )
    tokens = assert_default_token_response(response)
    me = await api.request("GET", "/api/me", token=tokens["access_token"])
    assert me.status == 200 and me.json["username"] == "alice"


async def test_token_endpoint_takes_the_scopes_ticked_in_swagger_ui(api: Api) -> None:
    await api.register("alice", PASSWORD)
    form = {"grant_type": "password", "username": "alice", "password": PASSWORD}
    response = await api.request(
        "POST",
        "/auth/token",
        data=form | {"scope": "notes:read"},
        headers=SWAGGER_HEADERS | basic(""),
    )
    assert_default_token_response(response, scope="notes:read")


# -- the pages, from the app itself ------------------------------------------------------


def csp(response: Any) -> dict[str, list[str]]:
    header = response.headers.get("content-security-policy", "")
    directives = [part.split() for part in header.split(";") if part.strip()]
    return {name: values for name, *values in directives}


def assert_strict_policy(response: Any) -> dict[str, list[str]]:
    policy = csp(response)
    assert policy["default-src"] == ["'none'"], policy
    assert policy["base-uri"] == ["'none'"] and policy["frame-ancestors"] == ["'none'"]
    assert policy["style-src"] == ["'self'"] and policy["connect-src"] == ["'self'"]
    assert set(policy["img-src"]) <= {"'self'", "data:"}
    for values in policy.values():
        for value in values:
            # no other origin, no wildcard, nothing inline without a hash
            assert value.startswith(("'self'", "'none'", "'sha256-")) or value == "data:", value
    return policy


@pytest.mark.parametrize("path", ["/docs", "/docs/"])
async def test_the_docs_page_loads_only_files_of_the_app(api: Api, path: str) -> None:
    page = await api.request("GET", path)
    assert page.status == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert csp(page)["script-src"] == ["'self'"]
    assert_strict_policy(page)
    assert page.headers["x-content-type-options"] == "nosniff"
    assert not EXTERNAL.search(page.text), EXTERNAL.search(page.text)
    assert "<style" not in page.text and not re.search(r"<script>|\son\w+=", page.text)

    linked = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert len(linked) == 4, linked
    for url in linked:
        assert url.startswith("/docs/assets/"), url
        asset = await api.request("GET", url)
        assert asset.status == 200, url
        assert asset.headers["x-content-type-options"] == "nosniff"
        kind = asset.headers["content-type"]
        if url.endswith(".js"):
            assert kind.startswith("text/javascript"), (url, kind)
        elif url.endswith(".css"):
            assert kind.startswith("text/css"), (url, kind)
            # the stylesheet's icons are data: URIs, no font or image of another origin
            sources = re.findall(r"url\(\s*['\"]?([^'\")]*)", asset.text)
            assert sources and all(source.startswith("data:") for source in sources)
            assert "@import" not in asset.text
        else:
            assert kind == "image/png", (url, kind)


async def test_the_initializer_asks_no_other_origin(api: Api) -> None:
    script = await api.request("GET", "/docs/assets/docs.js")
    assert script.status == 200
    assert not EXTERNAL.search(script.text)
    assert 'url: "/docs/openapi.json"' in script.text
    assert "validatorUrl: null" in script.text  # else it asks validator.swagger.io


async def test_the_oauth2_redirect_page_is_served_with_its_script_hash(api: Api) -> None:
    page = await api.request("GET", "/docs/oauth2-redirect.html")
    assert page.status == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "swaggerUIRedirectOauth2" in page.text
    assert not EXTERNAL.search(page.text)
    (script,) = re.findall(r"<script>(.*?)</script>", page.text, re.DOTALL)
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert assert_strict_policy(page)["script-src"] == [f"'sha256-{digest}'"]


@pytest.mark.parametrize(
    "path",
    ["/docs/assets/index.j2", "/docs/assets/swagger-ui.js.map", "/docs/assets/..%2Fdocs.py"],
)
async def test_only_the_listed_assets_are_served(api: Api, path: str) -> None:
    response = await api.request("GET", path)
    assert response.status == 404, path


async def test_the_document_stays_at_its_path(api: Api) -> None:
    response = await api.request("GET", "/docs/openapi.json")
    assert response.status == 200
    assert response.headers["content-type"].startswith("application/json")
    assert str(response.json["openapi"]).startswith("3.")
