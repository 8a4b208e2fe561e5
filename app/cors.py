"""CORS for the origins listed in CORS_ORIGINS: their pages may call every route with
credentials (the refresh cookie) and read the answers; preflights are answered for them.

Any other origin gets no CORS header: its page can't read the answer, and the browser sends
no request that needs a preflight (one with `X-CSRF-Token` or `Authorization`) at all.
With CORS_ORIGINS empty, nothing here runs.
"""

from __future__ import annotations

from typing import Any

from sanic import HTTPResponse, Request, Sanic
from sanic.response import BaseHTTPResponse

METHODS = "GET, POST, PUT, DELETE"
HEADERS = "Authorization, Content-Type, X-CSRF-Token, X-Request-ID"
EXPOSED = "Retry-After, WWW-Authenticate, X-Request-ID"
PREFLIGHT_MAX_AGE = "600"  # seconds a browser may reuse a preflight's answer


def _vary(response: BaseHTTPResponse) -> None:
    present = response.headers.get("vary")
    if present is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in present.lower():
        response.headers["Vary"] = f"{present}, Origin"


class Cors:
    def __init__(self, origins: tuple[str, ...]):
        self.origins = frozenset(origins)

    async def respond(self, request: Request, response: BaseHTTPResponse) -> HTTPResponse | None:
        """Response middleware: every answer, errors and preflights included."""
        _vary(response)  # the headers below depend on the Origin: caches must tell apart
        origin = request.headers.get("origin")
        if origin is None:
            return None
        headers = response.headers
        if origin in self.origins:
            headers["Access-Control-Allow-Origin"] = origin
            headers["Access-Control-Allow-Credentials"] = "true"
            if request.method == "OPTIONS" and "access-control-request-method" in request.headers:
                headers["Access-Control-Allow-Methods"] = METHODS
                headers["Access-Control-Allow-Headers"] = HEADERS
                headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
            else:
                headers["Access-Control-Expose-Headers"] = EXPOSED
        return None


def setup_cors(app: Sanic[Any, Any]) -> None:
    origins = app.ctx.settings.cors_origins
    if origins:
        app.register_middleware(Cors(origins).respond, "response")
