"""GET /metrics: Prometheus metrics of every worker, for the holder of `METRICS_TOKEN` only;
no such route at all (404) while it is unset."""

from __future__ import annotations

import hmac

from sanic import Blueprint, HTTPResponse, Request
from sanic.response import raw
from sanic_ext.extensions.openapi import openapi

from app.bearer import bearer_token
from app.errors import InvalidToken, MissingToken, NotFound
from app.observability import exposition

bp = Blueprint("metrics")


@bp.get("/metrics")
@openapi.exclude()
async def metrics(request: Request) -> HTTPResponse:
    expected: str | None = request.app.ctx.settings.metrics_token
    if expected is None:
        raise NotFound()
    given = bearer_token(request.headers.get("authorization"))
    if given is None:
        raise MissingToken("This route needs the metrics token.")
    # Sanic decodes header bytes with surrogateescape: compare the bytes as sent
    if not hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode()):
        raise InvalidToken("That is not the metrics token.")
    body, content_type = exposition()
    return raw(body, content_type=content_type, headers={"Cache-Control": "no-store"})
