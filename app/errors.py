"""The error tree a client can tell apart, and the one handler that renders every error.

Every error body is `{"error": code, "error_description": text}` (RFC 6749 §5.2 shape).
Sanic's own errors (404, 405, 413, bad framing) and dependency outages go through the
same handler, so there is exactly one error path.

Two branches:
- `ApiError` and its subclasses are answers: a status, a stable `error` code, headers.
- `DomainError` and its subclasses are raised below the HTTP layer (stores, policy) and
  know nothing of HTTP; `as_api_error` maps each onto its answer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, ClassVar

import asyncpg
import redis.exceptions
from sanic import HTTPResponse, Request
from sanic.exceptions import RequestCancelled, SanicException
from sanic.handlers import ErrorHandler
from sanic.response import json

from app.observability import count

log = logging.getLogger("app.errors")

REALM = 'Bearer realm="api"'
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error", "error_description"],
    "properties": {"error": {"type": "string"}, "error_description": {"type": "string"}},
}
RETRY_AFTER = "2"


class DomainError(Exception):
    """Base of the errors raised by stores and policy; the message is safe to show."""


class UsernameExists(DomainError):
    """A user with this name (ignoring case) exists already."""


class PolicyViolation(DomainError):
    """A username or password breaks the account policy; the message says how."""


class PasswordsBusy(DomainError):
    """This worker has as many password hashes in progress as it takes: a 503, at once."""


class ApiError(Exception):
    """Base of every error answered to a client."""

    status: int = 500  # an instance may differ (invalid_grant is 400 on /auth/token)
    error: ClassVar[str] = "server_error"
    description: ClassVar[str] = "The server could not answer this request."
    quiet: ClassVar[bool] = True

    def __init__(self, description: str | None = None, headers: dict[str, str] | None = None):
        self.error_description = description or self.description
        self.headers = headers or {}
        # what else the answer carries (cookies cleared after a refused refresh)
        self.finish: list[Callable[[HTTPResponse], None]] = []
        super().__init__(self.error_description)


class InvalidRequest(ApiError):
    status, error = 400, "invalid_request"
    description = "The request is malformed."


class InvalidScope(ApiError):
    status, error = 400, "invalid_scope"
    description = "The requested scope is invalid or exceeds what was granted."


class UnsupportedGrantType(ApiError):
    status, error = 400, "unsupported_grant_type"
    description = "The grant type is not supported."


class InvalidGrant(ApiError):
    """Bad credentials or an unusable refresh token: 401 on our routes, 400 on /auth/token."""

    status, error = 401, "invalid_grant"
    description = "The credentials or refresh token are invalid."

    def as_oauth(self) -> InvalidGrant:
        oauth = InvalidGrant(self.error_description)
        oauth.finish = self.finish
        oauth.status = 400  # RFC 6749 §5.2 answers invalid_grant with 400
        return oauth


class WrongPassword(ApiError):
    status, error = 403, "wrong_password"
    description = "The current password is wrong."


class NotFound(ApiError):
    status, error = 404, "not_found"
    description = "Not found."


class MethodNotAllowed(ApiError):
    status, error = 405, "method_not_allowed"
    description = "This method is not allowed on this route."


class UsernameTaken(ApiError):
    status, error = 409, "username_taken"
    description = "This username is already taken."


class PayloadTooLarge(ApiError):
    status, error = 413, "payload_too_large"
    description = "The request is too large."


class RateLimited(ApiError):
    status, error = 429, "rate_limited"
    description = "Too many failed attempts; try again later."

    def __init__(self, retry_after: int, description: str | None = None):
        super().__init__(description, {"Retry-After": str(max(1, retry_after))})


class ServiceUnavailable(ApiError):
    status, error = 503, "temporarily_unavailable"
    description = "A dependency is unavailable; try again shortly."
    quiet = False

    def __init__(self, description: str | None = None):
        super().__init__(description, {"Retry-After": RETRY_AFTER})


class BearerError(ApiError):
    """RFC 6750 §3 errors: they carry a `WWW-Authenticate` challenge."""

    def __init__(self, description: str | None = None, *, scope: str | None = None):
        super().__init__(description)
        self.headers = {"WWW-Authenticate": self.challenge(scope)}

    def challenge(self, scope: str | None) -> str:
        text = self.error_description.replace('"', "'")
        return f'{REALM}, error="{self.error}", error_description="{text}"'


class MissingToken(BearerError):
    status, error = 401, "missing_token"
    description = "This route needs a bearer access token."

    def challenge(self, scope: str | None) -> str:
        return REALM  # RFC 6750 §3.1: no error attribute when no credentials were sent


class InvalidBearerRequest(BearerError):
    status, error = 400, "invalid_request"
    description = "The Authorization header must be 'Bearer <token>'."

    def challenge(self, scope: str | None) -> str:
        return f'{REALM}, error="invalid_request"'


class InvalidToken(BearerError):
    status, error = 401, "invalid_token"
    description = "The access token is invalid."


class RevokedToken(InvalidToken):
    """A valid token of ours whose session or user was cut off (the same answer as any
    invalid token; introspection tells it apart)."""

    description = "The access token has been revoked."


class InsufficientScope(BearerError):
    status, error = 403, "insufficient_scope"
    description = "The access token lacks the scope this route needs."

    def challenge(self, scope: str | None) -> str:
        return f'{REALM}, error="insufficient_scope", scope="{scope or ""}"'


# Errors that mean PostgreSQL or Redis is unreachable or too slow, not a bug in the request.
OUTAGE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.ConnectionFailureError,
    asyncpg.TooManyConnectionsError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    # DATABASE_URL names a database not created yet (`make migrate` creates and migrates it)
    asyncpg.exceptions.InvalidCatalogNameError,
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.OutOfMemoryError,  # a full Redis (noeviction): nothing was written
    # a Redis Cluster failing over or resharding: its slot has no master for now
    redis.exceptions.ClusterError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.SlotNotCoveredError,
    redis.exceptions.MovedError,
    # no node of a Redis Cluster answers (redis-py raises this, not a RedisError)
    redis.exceptions.RedisClusterException,
)

_SANIC_CODES: dict[int, type[ApiError]] = {
    400: InvalidRequest,
    404: NotFound,
    405: MethodNotAllowed,
    413: PayloadTooLarge,
    503: ServiceUnavailable,
}


def as_api_error(exception: BaseException) -> ApiError:
    """Map anything raised while serving a request onto the error tree."""
    if isinstance(exception, ApiError):
        return exception
    if isinstance(exception, UsernameExists):
        return UsernameTaken()
    if isinstance(exception, PolicyViolation):
        return InvalidRequest(str(exception))
    if isinstance(exception, PasswordsBusy):
        return ServiceUnavailable(str(exception))
    if isinstance(exception, OUTAGE_ERRORS):
        return ServiceUnavailable()
    if isinstance(exception, SanicException):
        status = exception.status_code
        cls = _SANIC_CODES.get(status)
        if cls is ServiceUnavailable:
            return ServiceUnavailable()
        if cls is not None:
            # Keep Sanic's headers: a 405 carries `Allow` (RFC 9110 §15.5.6).
            mapped: ApiError = cls(_sanic_description(cls, exception), dict(exception.headers))
            return mapped
        if 400 <= status < 500:
            error = InvalidRequest(_sanic_description(InvalidRequest, exception))
            error.status = status
            return error
    return ApiError()


def dependency_of(exception: BaseException) -> str:
    """Which dependency an outage error comes from, as a metric label."""
    module = type(exception).__module__
    if module.startswith("redis"):
        return "redis"
    if module.startswith("asyncpg"):
        return "postgres"
    return "unknown"  # a timeout or a socket error: either


def _sanic_description(cls: type[ApiError], exception: SanicException) -> str:
    message = str(exception.message or "").strip()
    # Sanic's 404 text echoes the path; keep descriptions short and free of input
    return cls.description if cls is NotFound or not message else message[:200]


def render(error: ApiError) -> HTTPResponse:
    body: dict[str, Any] = {"error": error.error, "error_description": error.error_description}
    response = json(body, status=error.status, headers=error.headers)
    for finish in error.finish:
        finish(response)
    return response


class ApiErrorHandler(ErrorHandler):
    """Sanic's error handler, answering everything in the contract's shape."""

    def default(self, request: Request, exception: Exception) -> HTTPResponse:
        error = as_api_error(exception)
        if isinstance(exception, OUTAGE_ERRORS):
            count("dependency_errors", dependency_of(exception))
            log.warning(
                "%s %s: dependency unavailable: %r", request.method, request.path, exception
            )
        elif isinstance(exception, RequestCancelled):
            # the client closed the connection mid-request: nothing failed on our side (a
            # refresh whose answer is lost this way gets the same pair when retried)
            log.info("%s %s cancelled: the client went away", request.method, request.path)
        elif error.status >= 500 and not isinstance(exception, ApiError):
            log.error("%s %s failed", request.method, request.path, exc_info=exception)
        return render(error)
