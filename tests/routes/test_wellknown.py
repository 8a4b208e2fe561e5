"""The well-known documents (JWKS, RFC 8414 metadata) and RFC 7662 introspection, in-process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg
import jwt
import pytest
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata, get_well_known_url

from app.scopes import SCOPES
from tests.support import SECRET, Api


async def test_jwks_of_an_hmac_deployment_publishes_no_key(api: Api) -> None:
    response = await api.request("GET", "/.well-known/jwks.json")
    assert response.status == 200
    assert response.json == {"keys": []}  # HMAC keys are secret: nothing to publish
    assert response.headers["cache-control"] == "public, max-age=300"


async def test_metadata_names_every_endpoint_on_this_host(api: Api) -> None:
    response = await api.request("GET", "/.well-known/oauth-authorization-server")
    assert response.status == 200
    document = response.json
    base = "http://mockserver:1234"  # sanic-testing's host: the request's own scheme and host
    assert document["issuer"] == "jwt-refresh-api"  # the tokens' `iss`, exactly
    assert document["token_endpoint"] == f"{base}/auth/token"
    assert document["revocation_endpoint"] == f"{base}/auth/revoke"
    assert document["introspection_endpoint"] == f"{base}/auth/introspect"
    assert document["jwks_uri"] == f"{base}/.well-known/jwks.json"
    assert document["grant_types_supported"] == ["password", "refresh_token"]
    assert document["scopes_supported"] == list(SCOPES)
    assert document["token_endpoint_auth_methods_supported"] == ["none"]


async def test_authlib_reads_the_metadata_of_an_https_issuer(
    make_api: Callable[..., Api],
) -> None:
    issuer = "https://auth.example.com"
    api = make_api(jwt_issuer=issuer)
    assert get_well_known_url(issuer, external=True) == (
        f"{issuer}/.well-known/oauth-authorization-server"
    )
    document = (await api.request("GET", "/.well-known/oauth-authorization-server")).json
    metadata = AuthorizationServerMetadata(document)
    assert metadata["token_endpoint"] == f"{issuer}/auth/token"
    # Every field authlib validates passes, but one: with no authorization endpoint there is
    # no response type, and authlib takes RFC 8414's REQUIRED for "not empty".
    failing = []
    for name in AuthorizationServerMetadata.REGISTRY_KEYS:
        try:
            getattr(metadata, f"validate_{name}")()
        except ValueError as error:
            failing.append((name, str(error)))
    assert failing == [("response_types_supported", '"response_types_supported" is required')]
    assert document["response_types_supported"] == []


async def service_token(api: Api, db: asyncpg.Connection, scope: str = "introspect") -> str:
    await api.register("service", "service password 1")
    await db.execute("UPDATE users SET scope = $1 WHERE username = 'service'", scope)
    tokens = await api.login("service", "service password 1")
    access: str = tokens["access_token"]
    return access


async def introspect(api: Api, caller: str, **params: Any) -> Any:
    return await api.request("POST", "/auth/introspect", token=caller, data=params)


async def test_introspection_of_live_expired_revoked_and_foreign_tokens(
    api: Api, db: asyncpg.Connection
) -> None:
    caller = await service_token(api, db)
    user = await api.user()
    response = await introspect(api, caller, token=user["access_token"])
    assert response.status == 200 and response.headers["cache-control"] == "no-store"
    answer = response.json
    assert answer["active"] is True and answer["token_type"] == "Bearer"
    assert answer["token_use"] == "access_token"
    assert answer["username"] == "alice" and answer["scope"] == "notes:read notes:write"
    assert answer["sid"] == user["session_id"] and answer["sub"] == user["account_id"]
    assert {"iss", "aud", "iat", "exp", "jti"} <= set(answer)
    refresh = (await introspect(api, caller, token=user["refresh_token"])).json
    assert refresh["active"] is True and refresh["token_use"] == "refresh_token"
    assert "token_type" not in refresh
    # JSON bodies too, and the hint only orders the checks
    by_json = await api.request(
        "POST",
        "/auth/introspect",
        token=caller,
        json={"token": user["access_token"], "token_type_hint": "refresh_token"},
    )
    assert by_json.json["active"] is True
    for junk in ("garbage", "a.b.c", user["access_token"][:-3] + "AAA", "x" * 5000):
        assert (await introspect(api, caller, token=junk)).json == {"active": False}
    rotated = (await api.refresh(user["refresh_token"])).json
    assert (await introspect(api, caller, token=rotated["refresh_token"])).json["active"]
    await api.request("POST", "/auth/logout", token=rotated["access_token"])
    for token in (user["access_token"], rotated["access_token"], rotated["refresh_token"]):
        assert (await introspect(api, caller, token=token)).json == {"active": False}


@pytest.mark.parametrize(
    ("scope", "status", "error"),
    [("notes:read notes:write", 403, "insufficient_scope"), (None, 401, "missing_token")],
)
async def test_introspection_needs_the_introspect_scope(
    api: Api, db: asyncpg.Connection, scope: str | None, status: int, error: str
) -> None:
    user = await api.user("bob")
    caller = await service_token(api, db, scope) if scope else None
    response = await api.request(
        "POST", "/auth/introspect", token=caller, data={"token": user["access_token"]}
    )
    assert response.status == status and response.json["error"] == error


async def test_introspection_without_a_token_parameter_is_invalid_request(
    api: Api, db: asyncpg.Connection
) -> None:
    caller = await service_token(api, db)
    response = await api.request("POST", "/auth/introspect", token=caller, data={})
    assert response.status == 400 and response.json["error"] == "invalid_request"


async def test_tokens_without_kid_from_before_the_upgrade_work_until_they_expire(
    make_api: Callable[..., Api], db: asyncpg.Connection
) -> None:
    """An earlier release signed with JWT_SECRET itself and no kid: after the upgrade (no keys
    yet, live sessions) those tokens keep working, verified by the legacy key, while every new
    token has a kid; a kid-less token after the legacy key's horizon is refused."""
    earlier = make_api()
    user = await earlier.user()
    await db.execute("DELETE FROM signing_keys")  # the database as the earlier release left it
    claims = jwt.decode(user["access_token"], options={"verify_signature": False})
    legacy_token = jwt.encode(claims, SECRET, algorithm="HS256", headers={"typ": "at+jwt"})
    upgraded = make_api()
    assert (await upgraded.request("GET", "/api/me", token=legacy_token)).status == 200
    row = await db.fetchrow("SELECT alg, state, material FROM signing_keys WHERE kid = ''")
    assert (row["alg"], row["state"], row["material"]) == ("HS256", "retired", None)
    fresh = await upgraded.login()
    assert jwt.get_unverified_header(fresh["access_token"])["kid"]
    await db.execute(
        "UPDATE signing_keys SET retired_at = now() - interval '8 days' WHERE kid = ''"
    )
    later = make_api()
    response = await later.request("GET", "/api/me", token=legacy_token)
    assert response.status == 401 and response.json["error"] == "invalid_token"
