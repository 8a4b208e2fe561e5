"""The well-known documents: the JWKS (RFC 7517) other services verify tokens with, and the
authorization server metadata (RFC 8414) OAuth 2.0 clients discover the endpoints by."""

from __future__ import annotations

from typing import Any

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json
from sanic_ext.extensions.openapi import openapi
from sanic_ext.extensions.openapi.definitions import Response

from app.blueprints.common import json_body, object_schema
from app.config import Settings
from app.keys import ASYMMETRIC_ALGORITHMS
from app.scopes import SCOPES

bp = Blueprint("wellknown", url_prefix="/.well-known")

_JWKS = object_schema(
    ["keys"],
    keys={
        "type": "array",
        "items": object_schema(
            ["kty", "kid", "alg", "use"],
            kty={"type": "string", "enum": ["EC", "OKP", "RSA"]},
            kid={"type": "string"},
            alg={"type": "string", "enum": list(ASYMMETRIC_ALGORITHMS)},
            use={"type": "string", "enum": ["sig"]},
        ),
    },
)


def base_url(request: Request, settings: Settings) -> str:
    """Where the service is reached: JWT_ISSUER when it is a URL (as RFC 8414 wants the
    issuer to be), else the scheme and host of this request (behind a proxy, as its
    forwarding headers say when PROXIES_COUNT or FORWARDED_SECRET trusts them)."""
    issuer = settings.jwt_issuer
    if issuer.startswith(("https://", "http://")):
        return issuer.rstrip("/")
    return f"{request.scheme}://{request.host}"


@bp.get("/jwks.json")
@openapi.definition(
    summary="The public keys that verify access tokens (JWKS, RFC 7517)",
    response=[Response(json_body(_JWKS), 200)],
)
async def jwks(request: Request) -> HTTPResponse:
    settings: Settings = request.app.ctx.settings
    # No longer than a next key is published before it signs: a verifier that cached this
    # document knows every key that can sign before its copy expires.
    cache = f"public, max-age={settings.jwks_max_age}"
    return json(request.app.ctx.keyring.jwks(), headers={"Cache-Control": cache})


@bp.get("/oauth-authorization-server")
@openapi.definition(
    operation="authorizationServerMetadata",
    summary="Authorization server metadata (RFC 8414)",
    response=[Response(json_body({"type": "object"}), 200)],
)
async def metadata(request: Request) -> HTTPResponse:
    settings: Settings = request.app.ctx.settings
    base = base_url(request, settings)
    document: dict[str, Any] = {
        "issuer": settings.jwt_issuer,
        "token_endpoint": f"{base}/auth/token",
        "revocation_endpoint": f"{base}/auth/revoke",
        "introspection_endpoint": f"{base}/auth/introspect",
        "jwks_uri": f"{base}/.well-known/jwks.json",
        "grant_types_supported": ["password", "refresh_token"],
        # no authorization endpoint: no response type at all
        "response_types_supported": [],
        "scopes_supported": list(SCOPES),
        # public clients: the token and revocation endpoints take no client authentication
        "token_endpoint_auth_methods_supported": ["none"],
        "revocation_endpoint_auth_methods_supported": ["none"],
        "service_documentation": f"{base}/docs",
    }
    # Named from the request's Host: no shared cache may keep one host's answer for another
    shared = base == settings.jwt_issuer.rstrip("/")
    cache = f"{'public' if shared else 'private'}, max-age={settings.jwks_max_age}"
    return json(document, headers={"Cache-Control": cache})
