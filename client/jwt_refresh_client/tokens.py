"""The token manager: holds the current token response and refreshes it, once, for every
caller that needs it."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import Awaitable, Callable
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


def retry_after(response: httpx.Response, cap: float) -> float:
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
        """POST the refresh, again with the same token after a 503 or a transport failure (a
        timeout, a reset connection): the server answers a retry with the same successor pair,
        so a lost answer never ends the session."""
        for attempt in range(self.max_retries + 1):
            self.refreshes += 1
            try:
                if self.oauth:
                    data = {"grant_type": "refresh_token", "refresh_token": refresh_token}
                    response = await self.http.post("/auth/token", data=data)
                else:
                    body = {"refresh_token": refresh_token}
                    response = await self.http.post("/auth/refresh", json=body)
            except httpx.TransportError:
                if attempt == self.max_retries:
                    raise
                await asyncio.sleep(min(0.1 * 2**attempt, self.max_retry_after))
                continue
            if response.status_code != 503 or attempt == self.max_retries:
                return response
            # A 503 did not spend the token (the server guarantees it): retry the same one.
            await asyncio.sleep(retry_after(response, self.max_retry_after))
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
