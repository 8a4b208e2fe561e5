"""The client's bounded 503 retry, against a tiny local stub (the real service can't be made to
answer 503 on demand), and the client as its own distribution."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time

import httpx
import pytest
from jwt_refresh_client import AuthClient

PASSWORD = "correct horse battery"


class Stub:
    """A minimal HTTP/1.1 server on 127.0.0.1: answers 503 (with `retry_after`) to the first
    `failures` requests, then 201 with an account body. Counts the requests it got."""

    def __init__(self, failures: int, retry_after: str = "0") -> None:
        self.failures = failures
        self.retry_after = retry_after
        self.requests: list[tuple[str, bytes]] = []
        self.server: asyncio.Server | None = None

    @property
    def base(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def __aenter__(self) -> Stub:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
            lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            body = await asyncio.wait_for(reader.readexactly(length), timeout=5)
            self.requests.append((lines[0], body))
            if len(self.requests) <= self.failures:
                status, extra = "503 Service Unavailable", f"Retry-After: {self.retry_after}\r\n"
                payload = {"error": "temporarily_unavailable", "error_description": "stub"}
            else:
                status, extra = "201 Created", ""
                payload = {"id": "1", "username": "stub", "created_at": "2024-01-01T00:00:00Z"}
            data = json.dumps(payload).encode()
            writer.write(
                (
                    f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n{extra}Connection: close\r\n\r\n"
                ).encode()
                + data
            )
            await writer.drain()
        finally:
            writer.close()


async def test_503_is_retried_after_retry_after() -> None:
    async with Stub(failures=2) as stub, AuthClient(stub.base) as client:
        account = await asyncio.wait_for(client.register("stubuser", PASSWORD), timeout=10)
        assert account["username"] == "stub"
        assert len(stub.requests) == 3
        assert all(line.startswith("POST /auth/register ") for line, _ in stub.requests)
        assert {json.loads(body)["username"] for _, body in stub.requests} == {"stubuser"}


async def test_503_retries_are_bounded() -> None:
    async with Stub(failures=2) as stub, AuthClient(stub.base, max_retries=1) as client:
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await asyncio.wait_for(client.register("stubuser", PASSWORD), timeout=10)
        assert raised.value.response.status_code == 503
        assert raised.value.response.headers["retry-after"] == "0"
        assert len(stub.requests) == 2

    # a huge Retry-After is capped by max_retry_after: still quick, still bounded
    async with (
        Stub(failures=100, retry_after="3600") as stub,
        AuthClient(stub.base, max_retries=2, max_retry_after=0.05) as client,
    ):
        started = time.monotonic()
        with pytest.raises(httpx.HTTPStatusError) as raised:
            await asyncio.wait_for(client.register("stubuser", PASSWORD), timeout=10)
        assert raised.value.response.status_code == 503
        assert len(stub.requests) == 3
        assert time.monotonic() - started < 5


def test_the_client_imports_nothing_of_the_server() -> None:
    code = (
        "import sys, jwt_refresh_client; "
        "print(sorted(m for m in sys.modules if m == 'app' or m.startswith(('app.', 'sanic'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert out.strip() == "[]"


def test_app_client_is_the_same_client() -> None:
    import jwt_refresh_client

    import app.client

    assert app.client.AuthClient is jwt_refresh_client.AuthClient
    assert app.client.SessionExpired is jwt_refresh_client.SessionExpired
