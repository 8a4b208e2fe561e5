"""An asyncio client for this service that refreshes tokens for you, done right.

    async with AuthClient("http://127.0.0.1:8000") as client:
        await client.login("alice", "correct horse")
        r = await client.get("/api/me")              # an httpx.Response

- Refreshes ahead of expiry, and on a 401 with `error="invalid_token"` (then retries once).
- Single flight: any number of concurrent requests that need a refresh share one refresh
  call, and no request ever sends a refresh token this client has already rotated (the
  server would take that as theft and end the session).
- A refused refresh raises `SessionExpired` and clears the tokens; a 503 is retried after
  its Retry-After a bounded number of times; anything else is an ordinary httpx answer.
- `on_tokens` receives every new token response (to persist it); `tokens=` resumes from one.
- `BearerAuth` is the `httpx.Auth` underneath, usable with any `httpx.AsyncClient`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any

import httpx

TokenCallback = Callable[[dict[str, Any]], Awaitable[None] | None]


class SessionExpired(Exception):
    """The session can't be refreshed any more (ended, revoked, expired): log in again."""


def _lifetime(token: str) -> tuple[float, float]:
    """(iat, exp) of a JWT, read without verifying it (the server verifies; we only schedule).
    Unknown: (0, 0), so that the first request refreshes."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        return float(claims["iat"]), float(claims["exp"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0.0, 0.0


def _retry_after(response: httpx.Response, cap: float) -> float:
    try:
        return min(max(float(response.headers.get("retry-after", "1")), 0.0), cap)
    except ValueError:
        return 1.0


class TokenManager:
    """Holds the current token response and refreshes it, once, for every caller."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        tokens: dict[str, Any] | None = None,
        on_tokens: TokenCallback | None = None,
        oauth: bool = False,
        margin: float = 30.0,
        max_retries: int = 3,
        max_retry_after: float = 30.0,
    ):
        self.http = http
        self.on_tokens = on_tokens
        self.oauth = oauth
        self.margin = margin
        self.max_retries = max_retries
        self.max_retry_after = max_retry_after
        self.refreshes = 0  # how many refresh calls this manager made
        self._tokens: dict[str, Any] | None = None
        self._refresh_at = 0.0
        self._lock = asyncio.Lock()
        if tokens is not None:
            self._store(tokens)

    @property
    def tokens(self) -> dict[str, Any] | None:
        return dict(self._tokens) if self._tokens is not None else None

    async def set_tokens(self, tokens: dict[str, Any]) -> None:
        self._store(tokens)
        await self._announce(tokens)

    def clear(self) -> None:
        self._tokens = None
        self._refresh_at = 0.0

    async def access_token(self) -> str:
        """A current access token, refreshed first if it expires within the margin."""
        tokens = self._tokens
        if tokens is None:
            raise SessionExpired("Not logged in.")
        if time.time() < self._refresh_at:
            return str(tokens["access_token"])
        return await self.refresh(stale=str(tokens["access_token"]))

    async def refresh(self, stale: str | None) -> str:
        """Refresh, unless someone already replaced the `stale` access token meanwhile."""
        async with self._lock:
            tokens = self._tokens
            if tokens is None:
                raise SessionExpired("Not logged in.")
            if stale is not None and tokens["access_token"] != stale:
                return str(tokens["access_token"])  # another caller refreshed: share it
            response = await self._post_refresh(str(tokens["refresh_token"]))
            if response.status_code == 200:
                fresh: dict[str, Any] = response.json()
                self._store(fresh)
                await self._announce(fresh)
                return str(fresh["access_token"])
            if response.status_code in (400, 401):
                self.clear()
                raise SessionExpired(_describe(response))
            response.raise_for_status()
            raise httpx.HTTPStatusError(  # a 1xx/3xx here is not something to paper over
                f"unexpected answer to a refresh: {response.status_code}",
                request=response.request,
                response=response,
            )

    async def _post_refresh(self, refresh_token: str) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            self.refreshes += 1
            if self.oauth:
                data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
                response = await self.http.post("/auth/token", data=data)
            else:
                body = {"refresh_token": refresh_token}
                response = await self.http.post("/auth/refresh", json=body)
            if response.status_code != 503 or attempt == self.max_retries:
                return response
            # A 503 did not spend the token (the server guarantees it): retry the same one.
            await asyncio.sleep(_retry_after(response, self.max_retry_after))
        raise AssertionError("unreachable")  # pragma: no cover

    def _store(self, tokens: dict[str, Any]) -> None:
        self._tokens = dict(tokens)
        issued, expires = _lifetime(str(tokens.get("access_token", "")))
        # Refresh `margin` seconds ahead, but never in the first 90% of a short token's life.
        self._refresh_at = expires - min(self.margin, (expires - issued) * 0.1)

    async def _announce(self, tokens: dict[str, Any]) -> None:
        if self.on_tokens is not None:
            result = self.on_tokens(dict(tokens))
            if result is not None:
                await result


def _describe(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{body.get('error')}: {body.get('error_description')}"
    except ValueError:
        return f"refresh refused with {response.status_code}"


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
            await asyncio.sleep(_retry_after(response, self.max_retry_after))
        raise AssertionError("unreachable")  # pragma: no cover
