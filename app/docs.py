"""GET /docs: Swagger UI served from the swagger-ui-bundle package, never a CDN, under a
Content-Security-Policy that allows this origin only. The document is sanic-ext's own
/docs/openapi.json (its UI is off: see create_app).

sanic-ext's Swagger page loads its scripts from a CDN, and its /docs/oauth2-redirect.html
downloads the page from that CDN on every request (a 503 offline, an outbound request from
the server otherwise); this module serves the same files from the installed package.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

from sanic import Blueprint, HTTPResponse, Request, Sanic
from sanic.response import file, html
from sanic_ext.extensions.openapi import openapi
from swagger_ui_bundle import swagger_ui_path

from app.errors import NotFound

PREFIX = "/docs"
SWAGGER_UI = Path(str(swagger_ui_path))  # the package's copy of Swagger UI's dist/
OWN = Path(__file__).resolve().parent / "static" / "docs"
_JS, _CSS = "text/javascript; charset=utf-8", "text/css; charset=utf-8"
# a fixed list, not a directory: nothing else of either package can be asked for by name
ASSETS: dict[str, tuple[Path, str]] = {
    "swagger-ui-bundle.js": (SWAGGER_UI / "swagger-ui-bundle.js", _JS),
    "swagger-ui.css": (SWAGGER_UI / "swagger-ui.css", _CSS),
    "favicon-32x32.png": (SWAGGER_UI / "favicon-32x32.png", "image/png"),
    "docs.js": (OWN / "docs.js", _JS),
}


def policy(script_src: str) -> str:
    """No other origin, no framing, no plugins; Swagger UI's stylesheet draws its icons from
    data: URIs, and "Try it out" calls this origin."""
    return "; ".join(
        [
            "default-src 'none'",
            f"script-src {script_src}",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "base-uri 'none'",
            "frame-ancestors 'none'",
        ]
    )


def inline_script_hash(page: str) -> str:
    """The CSP source of the one inline script of `page`: 'sha256-...'."""
    match = re.search(r"<script>(.*?)</script>", page, re.DOTALL)
    if match is None:
        raise ValueError("no inline script")
    digest = hashlib.sha256(match.group(1).encode()).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _headers(csp: str | None = None) -> dict[str, str]:
    headers = {
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # the files change with a deployment (an upgrade of the package): revalidated each time
        "Cache-Control": "no-cache",
    }
    if csp is not None:
        headers |= {"Content-Security-Policy": csp, "X-Frame-Options": "DENY"}
    return headers


PAGE_HEADERS = _headers(policy("'self'"))
ASSET_HEADERS = _headers()
# Swagger UI's redirect page is one inline script: allowed by its hash, and nothing else
REDIRECT_PAGE = (SWAGGER_UI / "oauth2-redirect.html").read_text(encoding="utf-8")
REDIRECT_HEADERS = _headers(policy(inline_script_hash(REDIRECT_PAGE)))

bp = Blueprint("docs", url_prefix=PREFIX)


async def page(request: Request) -> HTTPResponse:
    return await file(
        OWN / "index.html",
        mime_type="text/html; charset=utf-8",
        headers=PAGE_HEADERS,
        request_headers=request.headers,
    )


@bp.get("/oauth2-redirect.html")
@openapi.exclude()
async def oauth2_redirect(request: Request) -> HTTPResponse:
    """Where Swagger UI's authorization-code and implicit flows come back (the password flow,
    the one this service offers, never leaves the page)."""
    return html(REDIRECT_PAGE, headers=REDIRECT_HEADERS)


@bp.get("/assets/<name:str>")
@openapi.exclude()
async def asset(request: Request, name: str) -> HTTPResponse:
    if name not in ASSETS:
        raise NotFound()
    path, mime_type = ASSETS[name]
    return await file(
        path, mime_type=mime_type, headers=ASSET_HEADERS, request_headers=request.headers
    )


def setup_docs(app: Sanic[Any, Any]) -> None:
    """The docs pages under /docs, beside sanic-ext's /docs/openapi.json."""
    app.blueprint(bp)
    # the page by the name sanic-ext's start-up banner links to (no such route: no start)
    app.add_route(page, PREFIX, name="openapi.index", strict_slashes=False)
