"""`AuthClient`, an httpx.AsyncClient that logs in and keeps its tokens fresh, and
`BearerAuth`, the `httpx.Auth` flow underneath it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from typing import Any

import httpx

from jwt_refresh_client.tokens import SessionExpired, TokenCallback, TokenManager, retry_after


class BearerAuth(httpx.Auth):
    """httpx auth flow: bearer token from a `TokenManager`, one refresh-and-retry on a 401."""

    def __init__(self, manager: TokenManager):
        self.manager = manager

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        # Buffer the body first, so that the request can be sent again after a refresh
        # (httpx's `requires_request_body` only applies to its own flow, not an override).
        await request.aread()
        token = await self.manager.access_token()
        request.headers["Authorization"] = f"Bearer {token}"
        response = yield request
        if response.status_code == 401 and 'error="invalid_token"' in response.headers.get(
            "www-authenticate", ""
        ):
            await response.aread()
            token = await self.manager.refresh(stale=token)
            request.headers["Authorization"] = f"Bearer {token}"
            yield request


class AuthClient:
    """An httpx.AsyncClient for this service that logs in and keeps its tokens fresh."""

    def __init__(
        self,
        base_url: str,
        *,
        tokens: dict[str, Any] | None = None,
        on_tokens: TokenCallback | None = None,
        oauth: bool = False,
        refresh_margin: float = 30.0,
        max_retries: int = 3,
        max_retry_after: float = 30.0,
        **httpx_options: Any,
    ):
        httpx_options.setdefault("timeout", httpx.Timeout(10.0))
        self.http = httpx.AsyncClient(base_url=base_url, **httpx_options)
        self.manager = TokenManager(
            self.http,
            tokens=tokens,
            on_tokens=on_tokens,
            oauth=oauth,
            margin=refresh_margin,
            max_retries=max_retries,
            max_retry_after=max_retry_after,
        )
        self.auth = BearerAuth(self.manager)
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after

    async def __aenter__(self) -> AuthClient:
        await self.http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.http.__aexit__(*exc)  # type: ignore[arg-type]

    async def aclose(self) -> None:
        await self.http.aclose()

    @property
    def tokens(self) -> dict[str, Any] | None:
        """The current token response (a copy), or None when logged out."""
        return self.manager.tokens

    async def register(self, username: str, password: str) -> dict[str, Any]:
        response = await self._send(
            "POST", "/auth/register", json={"username": username, "password": password}
        )
        response.raise_for_status()
        account: dict[str, Any] = response.json()
        return account

    async def login(self, username: str, password: str, scope: str | None = None) -> dict[str, Any]:
        if self.manager.oauth:
            data = {"grant_type": "password", "username": username, "password": password}
            if scope is not None:
                data["scope"] = scope
            response = await self._send("POST", "/auth/token", data=data)
        else:
            body = {"username": username, "password": password}
            if scope is not None:
                body["scope"] = scope
            response = await self._send("POST", "/auth/login", json=body)
        response.raise_for_status()
        tokens: dict[str, Any] = response.json()
        await self.manager.set_tokens(tokens)
        return tokens

    async def logout(self) -> None:
        """End this session on the server (if there is one) and forget the tokens."""
        if self.manager.tokens is not None:
            try:
                response = await self.request("POST", "/auth/logout")
                if response.status_code not in (204, 401):
                    response.raise_for_status()
            except SessionExpired:
                pass
        self.manager.clear()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """A request with the bearer token; refreshed and retried as described above."""
        return await self._send(method, url, auth=self.auth, **kwargs)

    async def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("GET", url, **kwargs)

    async def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("POST", url, **kwargs)

    async def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PUT", url, **kwargs)

    async def patch(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("PATCH", url, **kwargs)

    async def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return await self.request("DELETE", url, **kwargs)

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            response = await self.http.request(method, url, **kwargs)
            if response.status_code != 503 or attempt == self.max_retries:
                return response
            await response.aread()
            await asyncio.sleep(retry_after(response, self.max_retry_after))
        raise AssertionError("unreachable")  # pragma: no cover
