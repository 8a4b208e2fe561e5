"""Where a request comes from: the client's address and user agent, and the request id. The
session list shows the first two; every audit event records all three."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from sanic import Request


@dataclass(frozen=True, slots=True)
class ClientInfo:
    """The origin of a request (all None outside one: the command line)."""

    user_agent: str | None = None
    ip: str | None = None
    request_id: str | None = None


def client_info(request: Request) -> ClientInfo:
    """Injected as `client: ClientInfo`: the caller's user agent, address and request id."""
    agent = request.headers.get("user-agent")
    if agent:
        # Sanic decodes header bytes with surrogateescape: store what can be stored.
        agent = agent[:512].encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return ClientInfo(
        user_agent=agent or None,
        ip=_address(request.remote_addr or request.ip),
        request_id=getattr(request, "request_id", None),  # an ApiRequest's
    )


def _address(raw: str | None) -> str | None:
    """The client's address, if it is one (a forwarding header may carry anything)."""
    try:
        return str(ipaddress.ip_address((raw or "").strip("[]")))
    except ValueError:
        return None
