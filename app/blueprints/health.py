"""Liveness (no dependency touched) and readiness (PostgreSQL and Redis answer)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable

from redis.asyncio import Redis
from sanic import Blueprint, HTTPResponse, Request
from sanic.response import json
from sanic_ext.extensions.openapi import openapi
from sanic_ext.extensions.openapi.definitions import Response

from app.blueprints.common import json_body, object_schema
from app.db import Database
from app.errors import RETRY_AFTER
from app.stores import probes

bp = Blueprint("health", url_prefix="/health")

CHECK_TIMEOUT = 2.0
_READY = object_schema(
    ["status", "postgres", "redis"],
    status={"type": "string"},
    postgres={"type": "string", "enum": ["ok", "down"]},
    redis={"type": "string", "enum": ["ok", "down"]},
)


@bp.get("/live")
@openapi.definition(
    summary="Liveness: the worker answers (touches no dependency)",
    response=[Response(json_body(object_schema(["status"], status={"type": "string"})), 200)],
)
async def live(request: Request) -> HTTPResponse:
    return json({"status": "ok"})


async def _check(probe: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            await probe
    except Exception:  # noqa: BLE001 - any failure means "down" here
        return "down"
    return "ok"


@bp.get("")
@openapi.definition(
    summary="Readiness: PostgreSQL and Redis answer",
    response=[
        Response(json_body(_READY), 200, "Both answer"),
        Response(json_body(_READY), 503, "Names what is down (plus error, error_description)"),
    ],
)
async def health(request: Request, db: Database, redis_client: Redis) -> HTTPResponse:
    postgres, redis = await asyncio.gather(
        _check(probes.postgres(db)), _check(probes.redis(redis_client))
    )
    body = {"status": "ok", "postgres": postgres, "redis": redis}
    if "down" not in (postgres, redis):
        return json(body)
    down = " and ".join(
        name for name, state in (("postgres", postgres), ("redis", redis)) if state == "down"
    )
    body |= {
        "status": "unavailable",
        "error": "temporarily_unavailable",
        "error_description": f"{down} is down",
    }
    return json(body, status=503, headers={"Retry-After": RETRY_AFTER})
