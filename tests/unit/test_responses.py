"""Unit tests of the token response: defined once, matching the contract, schema derived."""

from __future__ import annotations

import dataclasses
from typing import Any

import jwt
import pytest

from app.accounts.responses import TokenResponse, issue_pair
from app.blueprints.common import TOKEN_RESPONSE, dataclass_schema
from app.config import Settings
from app.errors import InvalidGrant
from tests.support import COOKIE_TOKEN_FIELDS, SECRET, TOKEN_FIELDS
from tests.support.tokens import make_tokens

SID = "0f0e8d52-4c1a-4d8e-9a55-3f1b2c3d4e5f"
NOW = 1_800_000_000


def issue(**changes: Any) -> TokenResponse:
    arguments: dict[str, Any] = {
        "user_id": "u1",
        "username": "alice",
        "sid": SID,
        "scope": "notes:read",
        "refresh_jti": "jti-1",
        "session_expires": NOW + 30 * 86400,
        "issued_at": NOW,
        "version": 3,
        "now": NOW,
    }
    return issue_pair(make_tokens(Settings(jwt_secret=SECRET)), **(arguments | changes))


def test_the_fields_are_the_contracts() -> None:
    names = {field.name for field in dataclasses.fields(TokenResponse)}
    assert names == TOKEN_FIELDS | COOKIE_TOKEN_FIELDS


def test_the_schema_requires_every_field_of_both_deliveries() -> None:
    assert set(TOKEN_RESPONSE["required"]) == TOKEN_FIELDS & COOKIE_TOKEN_FIELDS
    assert set(TOKEN_RESPONSE["properties"]) == TOKEN_FIELDS | COOKIE_TOKEN_FIELDS
    assert TOKEN_RESPONSE["properties"]["token_type"] == {"type": "string", "enum": ["Bearer"]}
    assert TOKEN_RESPONSE["properties"]["expires_in"] == {"type": "integer"}
    assert TOKEN_RESPONSE == dataclass_schema(TokenResponse)


def test_issue_pair() -> None:
    issued = issue()
    assert issued.as_json() == {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": 600,
        "refresh_token": issued.refresh_token,
        "refresh_expires_in": 604800,
        "scope": "notes:read",
        "account_id": "u1",
        "session_id": SID,
    }
    refresh = jwt.decode(issued.refresh_token, options={"verify_signature": False})
    assert (refresh["jti"], refresh["iat"], refresh["sid"]) == ("jti-1", NOW, SID)
    access = jwt.decode(issued.access_token, options={"verify_signature": False})
    assert (access["ver"], access["iat"]) == (3, NOW)


def test_the_refresh_token_stops_at_the_session_limit() -> None:
    assert issue(session_expires=NOW + 100).refresh_expires_in == 100


def test_a_pair_issued_again_is_the_same_bytes_with_its_lifetimes_counted_from_now() -> None:
    first, again = issue(), issue(now=NOW + 45)
    assert (again.access_token, again.refresh_token) == (first.access_token, first.refresh_token)
    assert (again.expires_in, again.refresh_expires_in) == (600 - 45, 604800 - 45)
    access = jwt.decode(first.access_token, options={"verify_signature": False})
    refresh = jwt.decode(first.refresh_token, options={"verify_signature": False})
    assert access["jti"] != refresh["jti"]


def test_a_session_at_its_limit_issues_nothing() -> None:
    with pytest.raises(InvalidGrant, match="maximum age"):
        issue(session_expires=NOW)
