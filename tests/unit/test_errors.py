"""Unit tests of app/errors.py: everything raised maps onto one answer of the contract."""

from __future__ import annotations

import asyncpg
import pytest
import redis.exceptions
from sanic.exceptions import MethodNotAllowed, NotFound, PayloadTooLarge

from app.errors import (
    ApiError,
    InvalidRequest,
    PolicyViolation,
    ServiceUnavailable,
    UsernameExists,
    UsernameTaken,
    as_api_error,
    render,
)


def test_domain_errors_map_onto_their_answers() -> None:
    taken = as_api_error(UsernameExists("The username 'alice' is taken."))
    assert isinstance(taken, UsernameTaken) and taken.status == 409
    policy = as_api_error(PolicyViolation("The password must have at least 8 characters."))
    assert isinstance(policy, InvalidRequest) and policy.status == 400
    assert policy.error_description == "The password must have at least 8 characters."


@pytest.mark.parametrize(
    "exception",
    [
        ConnectionRefusedError(),
        TimeoutError(),
        asyncpg.CannotConnectNowError(),
        redis.exceptions.ConnectionError(),
        redis.exceptions.TimeoutError(),
    ],
)
def test_outages_are_503_with_retry_after(exception: BaseException) -> None:
    error = as_api_error(exception)
    assert isinstance(error, ServiceUnavailable)
    assert (error.status, error.error) == (503, "temporarily_unavailable")
    assert int(error.headers["Retry-After"]) > 0


def test_sanic_errors_keep_their_status_and_headers() -> None:
    assert as_api_error(NotFound("/secret/path")).error_description == "Not found."
    not_allowed = as_api_error(MethodNotAllowed("no", method="PUT", allowed_methods=["GET"]))
    assert (not_allowed.status, not_allowed.error) == (405, "method_not_allowed")
    assert not_allowed.headers.get("Allow") == "GET"
    assert as_api_error(PayloadTooLarge()).status == 413


def test_anything_else_is_a_plain_500() -> None:
    error = as_api_error(ZeroDivisionError("secret detail"))
    assert (error.status, error.error) == (500, "server_error")
    assert "secret" not in error.error_description


def test_render_is_the_contracts_shape() -> None:
    response = render(ApiError())
    assert response.status == 500
    assert response.body.startswith(b'{"error":"server_error","error_description":')
