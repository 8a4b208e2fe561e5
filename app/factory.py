"""create_app(): the application, its error handler, and every feature's setup. No I/O here:
each feature opens what it needs per worker, in its own listeners, in the order set up."""

from __future__ import annotations

import sys
from typing import Any

from sanic import Sanic

from app import speedups
from app.accounts import setup_accounts
from app.apispec import setup_openapi
from app.bearer import setup_bearer
from app.blueprints import setup_blueprints
from app.config import ConfigError, Settings
from app.cookies import setup_cookies
from app.cors import setup_cors
from app.db import setup_database
from app.docs import setup_docs
from app.errors import ApiErrorHandler
from app.keyring import setup_keys
from app.maintenance import setup_maintenance
from app.observability import setup_observability
from app.redis import setup_redis
from app.revocation import setup_revocation
from app.tokens import Tokens

APP_NAME = "jwt_refresh_api"

# Bounded input: a token, a few headers and a note fit easily.
REQUEST_MAX_SIZE = 64 * 1024
REQUEST_MAX_HEADER_SIZE = 16 * 1024


def create_app(*_: Any, settings: Settings | None = None, name: str = APP_NAME) -> Sanic[Any, Any]:
    """Build the app. Positional arguments are ignored (`sanic --factory` passes its Namespace)."""
    if settings is None:
        try:
            settings = Settings.from_env()
        except ConfigError as error:
            sys.exit(f"configuration error: {error}")

    speedups.apply()
    app: Sanic[Any, Any] = Sanic(name, error_handler=ApiErrorHandler())
    app.config.update(
        REQUEST_MAX_SIZE=REQUEST_MAX_SIZE,
        REQUEST_MAX_HEADER_SIZE=REQUEST_MAX_HEADER_SIZE,
        REQUEST_TIMEOUT=15,
        RESPONSE_TIMEOUT=30,
        KEEP_ALIVE_TIMEOUT=75,
        FALLBACK_ERROR_FORMAT="json",
        # sanic-ext builds /docs/openapi.json; its pages load from a CDN: app.docs serves them
        OAS_UI_DEFAULT=None,
        OAS_UI_SWAGGER=False,
        OAS_UI_REDOC=False,
        OAS_URL_PREFIX="/docs",
        OAS_IGNORE_HEAD=True,
        OAS_IGNORE_OPTIONS=True,
        HTTP_AUTO_TRACE=False,
        CORS=False,
        OAS_AUTODOC=True,
        PROXIES_COUNT=settings.proxies_count,
        REAL_IP_HEADER=settings.real_ip_header,
        FORWARDED_SECRET=settings.forwarded_secret,
    )
    app.ctx.settings = settings
    app.ctx.tokens = Tokens(settings)
    app.ext.openapi.describe(
        "jwt-refresh-api",
        version="0.1.0",
        description="Short-lived JWT access tokens, rotating refresh tokens, instant revocation.",
    )

    # Listeners run in this order when a worker starts, and in reverse when it stops.
    setup_observability(app)  # request ids, logs, the access log, metrics (first of all)
    setup_database(app)  # app.ctx.db
    setup_keys(app)  # app.ctx.keyring: the signing keys app.ctx.tokens uses
    setup_redis(app)  # app.ctx.redis
    setup_revocation(app)  # app.ctx.revocations, its feed running
    setup_accounts(app)  # app.ctx.accounts
    setup_bearer(app)  # app.ctx.bearer, the middleware
    setup_cookies(app)  # app.ctx.cookies: the refresh cookie and its CSRF check
    setup_cors(app)  # CORS_ORIGINS: their pages may call with credentials
    setup_blueprints(app)
    setup_openapi(app)  # security schemes, named schemas, operationIds
    setup_docs(app)  # /docs: Swagger UI
    setup_maintenance(app)  # the periodic purge, one worker of all hosts at a time
    return app
