"""jwt-refresh-client: an asyncio client for jwt-refresh-api that refreshes tokens for you.

It imports nothing of the server, and installs on its own (`pip install ./client`).

    async with AuthClient("http://127.0.0.1:8000") as client:
        await client.login("alice", "correct horse")
        r = await client.get("/api/me")              # an httpx.Response

- Refreshes ahead of expiry, and on a 401 with `error="invalid_token"` (then retries once).
- Single flight: any number of concurrent requests that need a refresh share one refresh
  call, and no request ever sends a refresh token this client has already rotated (the
  server would take that as theft and end the session).
- A refused refresh raises `SessionExpired` and clears the tokens; a 503 is retried after
  its Retry-After, and a refresh whose answer was lost (timeout, reset) with the same token,
  a bounded number of times; anything else is an ordinary httpx answer.
- `on_tokens` receives every new token response (to persist it); `tokens=` resumes from one.
- `BearerAuth` is the `httpx.Auth` underneath, usable with any `httpx.AsyncClient`.
"""

from jwt_refresh_client.client import AuthClient, BearerAuth
from jwt_refresh_client.tokens import SessionExpired, TokenCallback, TokenManager

__all__ = ["AuthClient", "BearerAuth", "SessionExpired", "TokenCallback", "TokenManager"]
