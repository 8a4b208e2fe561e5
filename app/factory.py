"""create_app(): the application, its error handler, listeners and blueprints. No I/O here."""

from __future__ import annotations

import logging
import sys
from typing import Any

from sanic import Sanic

from app import passwords
from app.auth import AuthService
from app.blueprints import admin, auth, health, resources
from app.config import ConfigError, Settings
from app.db import Database
from app.errors import ApiErrorHandler
from app.middleware import setup_middleware
from app.redis import open_redis
from app.revocations import RevocationMirror, VerifiedTokens
from app.stores.ratelimit import LoginLimiter
from app.stores.revocation import RevocationFeed, RevocationStore
from app.tokens import Tokens

APP_NAME = "jwt_refresh_api"

# Bounded input: a token, a few headers and a note fit easily.
REQUEST_MAX_SIZE = 64 * 1024
REQUEST_MAX_HEADER_SIZE = 16 * 1024


def create_app(
    *_: Any, settings: Settings | None = None, name: str = APP_NAME, listeners: bool = True
) -> Sanic[Any, Any]:
    """Build the app. Positional arguments are ignored (`sanic --factory` passes its Namespace).

    `listeners=False` leaves opening the pools to the caller (`open_resources`): the tests do,
    because sanic-testing's ASGI client runs the server listeners around every request.
    """
    if settings is None:
        try:
            settings = Settings.from_env()
        except ConfigError as error:
            sys.exit(f"configuration error: {error}")

    app: Sanic[Any, Any] = Sanic(name, error_handler=ApiErrorHandler())
    app.config.update(
        REQUEST_MAX_SIZE=REQUEST_MAX_SIZE,
        REQUEST_MAX_HEADER_SIZE=REQUEST_MAX_HEADER_SIZE,
        REQUEST_TIMEOUT=15,
        RESPONSE_TIMEOUT=30,
        KEEP_ALIVE_TIMEOUT=75,
        FALLBACK_ERROR_FORMAT="json",
        OAS_UI_DEFAULT="swagger",
        OAS_UI_REDOC=False,
        OAS_URL_PREFIX="/docs",
        OAS_IGNORE_HEAD=True,
        OAS_IGNORE_OPTIONS=True,
        HTTP_AUTO_TRACE=False,
        CORS=False,
        OAS_AUTODOC=True,
    )
    app.ctx.settings = settings
    app.ctx.tokens = Tokens(settings)

    app.ext.openapi.describe(
        "jwt-refresh-api",
        version="0.1.0",
        description="Short-lived JWT access tokens, rotating refresh tokens, instant revocation.",
    )
    app.ext.openapi.add_security_scheme("bearer", "http", scheme="bearer", bearer_format="JWT")

    setup_middleware(app)
    app.blueprint(auth.bp)
    app.blueprint(resources.bp)
    app.blueprint(admin.bp)
    app.blueprint(health.bp)
    if listeners:
        setup_listeners(app)
    return app


async def open_resources(app: Sanic[Any, Any]) -> None:
    """Open this worker's pools and the services built on them."""
    settings: Settings = app.ctx.settings
    db = await Database.open(settings.database_url)
    redis = open_redis(settings.redis_url)
    revocation = RevocationStore(
        redis, prefix=settings.redis_key_prefix, access_ttl=settings.access_token_ttl
    )
    app.ctx.db, app.ctx.redis, app.ctx.revocation = db, redis, revocation
    # The fast path of the bearer check: verified tokens, and a copy of the revocation state
    # that pub/sub keeps current (the middleware asks Redis while the copy is not trusted).
    limiter = LoginLimiter(redis, prefix=settings.redis_key_prefix)
    auth = app.ctx.auth = AuthService(settings, app.ctx.tokens, db, revocation, limiter)
    app.ctx.verified = VerifiedTokens()
    app.ctx.mirror = RevocationMirror(revocation.revoked_ttl)
    feed = RevocationFeed(settings.redis_url, revocation, app.ctx.mirror, auth.reseed_revocations)
    revocation.feed = feed
    feed.start()
    await passwords.warm_up()


async def close_resources(app: Sanic[Any, Any]) -> None:
    if app.ctx.revocation.feed is not None:
        await app.ctx.revocation.feed.stop()
    await app.ctx.db.close()
    await app.ctx.redis.aclose()


def setup_listeners(app: Sanic[Any, Any]) -> None:
    # Once per worker process: workers are spawned, and each opens its own pools.
    app.before_server_start(open_resources)
    app.after_server_stop(close_resources)
    logging.getLogger("app").setLevel(logging.INFO)
