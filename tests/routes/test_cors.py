"""CORS: credentials and preflights for the origins in CORS_ORIGINS only, `Vary: Origin`."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.support import Api

LISTED = "https://app.example.com"
PREFLIGHT = {
    "Origin": LISTED,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "content-type, x-csrf-token",
}


@pytest.fixture
def cors_api(make_api: Callable[..., Api]) -> Api:
    return make_api(cors_origins=(LISTED, "http://127.0.0.1:5173"))


async def test_a_listed_origins_preflight(cors_api: Api) -> None:
    for path in ("/auth/refresh", "/auth/logout", "/api/notes"):
        response = await cors_api.request("OPTIONS", path, headers=PREFLIGHT)
        assert response.status in (200, 204), (path, response.text)
        headers = response.headers
        assert headers["access-control-allow-origin"] == LISTED
        assert headers["access-control-allow-credentials"] == "true"
        assert "POST" in headers["access-control-allow-methods"]
        allowed = {
            name.strip().lower() for name in headers["access-control-allow-headers"].split(",")
        }
        assert {"content-type", "x-csrf-token", "authorization"} <= allowed
        assert int(headers["access-control-max-age"]) > 0
        assert "origin" in headers["vary"].lower()


async def test_an_unlisted_origin_gets_no_cors_header(cors_api: Api) -> None:
    for origin in ("https://evil.example.com", "null", "https://app.example.com:8443"):
        preflight = await cors_api.request(
            "OPTIONS", "/auth/refresh", headers={**PREFLIGHT, "Origin": origin}
        )
        simple = await cors_api.request("GET", "/health/live", headers={"Origin": origin})
        for response in (preflight, simple):
            assert not [name for name in response.headers if name.startswith("access-control-")]
            assert "origin" in response.headers["vary"].lower()


async def test_listed_origins_read_answers_errors_included(cors_api: Api) -> None:
    tokens = await cors_api.user()
    me = await cors_api.request(
        "GET", "/api/me", token=tokens["access_token"], headers={"Origin": LISTED}
    )
    refused = await cors_api.request("GET", "/api/me", headers={"Origin": LISTED})
    assert (me.status, refused.status) == (200, 401)
    for response in (me, refused):
        assert response.headers["access-control-allow-origin"] == LISTED
        assert response.headers["access-control-allow-credentials"] == "true"
        exposed = response.headers["access-control-expose-headers"].lower()
        assert "www-authenticate" in exposed and "x-request-id" in exposed


async def test_without_cors_origins_no_cors_at_all(api: Api) -> None:
    response = await api.request("OPTIONS", "/auth/refresh", headers=PREFLIGHT)
    assert not [name for name in response.headers if name.startswith("access-control-")]
    plain = await api.request("GET", "/health/live", headers={"Origin": LISTED})
    assert "access-control-allow-origin" not in plain.headers
