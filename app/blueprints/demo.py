"""GET /demo: a browser app of plain HTML, JavaScript and CSS (app/static/demo) that uses the
cookie mode; served under a Content-Security-Policy that allows nothing but its own files."""

from __future__ import annotations

from pathlib import Path

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import file
from sanic_ext.extensions.openapi import openapi

from app.errors import NotFound

bp = Blueprint("demo", url_prefix="/demo")

FILES = Path(__file__).resolve().parent.parent / "static" / "demo"
# a fixed list, not a directory: nothing else of the package can be asked for by name
ASSETS = {
    "app.js": "text/javascript; charset=utf-8",
    "style.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

# No inline script or style, no other origin, no framing (clickjacking), no plugins.
POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "base-uri 'none'",
        "object-src 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {
    "Content-Security-Policy": POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # small files that change with a deployment: always revalidated, never stale
    "Cache-Control": "no-cache",
}


@bp.get("")
@openapi.exclude()
async def page(request: Request) -> HTTPResponse:
    return await file(FILES / "index.html", mime_type="text/html; charset=utf-8", headers=HEADERS)


@bp.get("/<name:str>")
@openapi.exclude()
async def asset(request: Request, name: str) -> HTTPResponse:
    if name not in ASSETS:
        raise NotFound()
    return await file(FILES / name, mime_type=ASSETS[name], headers=HEADERS)
