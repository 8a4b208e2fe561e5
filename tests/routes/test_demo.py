"""GET /demo and its files: served by the app under a CSP of its own origin only, no inline
script or style, nothing else of the package by name (the page itself: tests/browser)."""

from __future__ import annotations

import re

import pytest

from app.blueprints.demo import FILES
from tests.support import Api

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; object-src 'none'; "
    "frame-ancestors 'none'"
)


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/demo", "text/html"),
        ("/demo/app.js", "text/javascript"),
        ("/demo/style.css", "text/css"),
        ("/demo/favicon.svg", "image/svg+xml"),
    ],
)
async def test_the_page_and_its_files_come_under_a_strict_policy(
    api: Api, path: str, content_type: str
) -> None:
    response = await api.request("GET", path)
    assert response.status == 200, response.text
    assert response.headers["content-type"].startswith(content_type)
    assert response.headers["content-security-policy"] == CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"


@pytest.mark.parametrize(
    "path", ["/demo/index.html", "/demo/../setup.cfg", "/demo/%2e%2e%2fdemo.py", "/demo/x.js"]
)
async def test_nothing_else_is_served_by_name(api: Api, path: str) -> None:
    response = await api.request("GET", path)
    assert response.status == 404
    assert response.json["error"] == "not_found"


def test_the_page_has_no_inline_script_or_style_and_nothing_of_another_origin() -> None:
    html = (FILES / "index.html").read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b([^>]*)>(.*?)</script>", html, re.S)
    assert scripts and all("src=" in attrs and not body.strip() for attrs, body in scripts)
    assert "<style" not in html and " style=" not in html
    assert not re.search(r" on[a-z]+=", html)  # no inline event handlers either
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
