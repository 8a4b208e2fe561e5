"""Liveness (no dependency touched) and readiness (PostgreSQL answers and is migrated, Redis
answers)."""

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
from app.migrate import MigrationsMissing, latest_version
from app.stores import probes

bp = Blueprint("health", url_prefix="/health")

CHECK_TIMEOUT = 2.0
_READY = object_schema(
    ["status", "postgres", "redis"],
    status={"type": "string"},
    postgres={"type": "string", "enum": ["ok", "down", "not_migrated"]},
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


async def _postgres(db: Database) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT):
            version = await probes.schema_version(db)
    except Exception:  # noqa: BLE001 - any failure means "down" here
        return "down"
    try:
        return "ok" if version == latest_version() else "not_migrated"
    except MigrationsMissing:
        return "not_migrated"


def _problems(postgres: str, redis: str) -> str:
    down = [name for name, state in (("PostgreSQL", postgres), ("Redis", redis)) if state == "down"]
    said = [" and ".join(down) + (" are down" if len(down) == 2 else " is down")] if down else []
    if postgres == "not_migrated":
        said.append("the database is not migrated (run `jwt-refresh-api migrate`)")
    return "; ".join(said)


@bp.get("")
@openapi.definition(
    summary="Readiness: PostgreSQL answers and is migrated, Redis answers",
    response=[
        Response(json_body(_READY), 200, "Both answer"),
        Response(json_body(_READY), 503, "Names what is down (plus error, error_description)"),
    ],
)
async def health(request: Request, db: Database, redis_client: Redis) -> HTTPResponse:
    postgres, redis = await asyncio.gather(_postgres(db), _check(probes.redis(redis_client)))
    body = {"status": "ok", "postgres": postgres, "redis": redis}
    if (postgres, redis) == ("ok", "ok"):
        return json(body)
    body |= {
        "status": "unavailable",
        "error": "temporarily_unavailable",
        "error_description": _problems(postgres, redis),
    }
    return json(body, status=503, headers={"Retry-After": RETRY_AFTER})
