"""Unit tests of app/scopes.py: what a request may be granted, and the scope grammar."""

from __future__ import annotations

import pytest

from app.errors import InvalidRequest, InvalidScope
from app.scopes import ADMIN_SCOPE, DEFAULT_SCOPE, check_syntax, resolve_scope

GRANTED = "notes:read notes:write admin"


@pytest.mark.parametrize("requested", [None, "", "   ", "\t"])
def test_nothing_requested_grants_everything(requested: str | None) -> None:
    assert resolve_scope(requested, GRANTED) == GRANTED


@pytest.mark.parametrize(
    ("requested", "granted"),
    [
        ("notes:read", "notes:read"),
        ("admin notes:read", "notes:read admin"),  # in the account's order
        ("notes:read notes:read", "notes:read"),
        ("  notes:write   admin ", "notes:write admin"),
        (GRANTED, GRANTED),
    ],
)
def test_a_subset_is_granted(requested: str, granted: str) -> None:
    assert resolve_scope(requested, GRANTED) == granted


@pytest.mark.parametrize("requested", ["notes:delete", "notes:read superuser", "Notes:Read"])
def test_more_than_the_account_has_is_invalid_scope(requested: str) -> None:
    with pytest.raises(InvalidScope) as caught:
        resolve_scope(requested, GRANTED)
    assert caught.value.status == 400 and caught.value.error == "invalid_scope"


def test_an_account_without_scopes_gets_none() -> None:
    assert resolve_scope(None, "") == ""
    with pytest.raises(InvalidScope):
        resolve_scope("notes:read", "")


def test_new_accounts_and_admins() -> None:
    assert DEFAULT_SCOPE.split() == ["notes:read", "notes:write"]
    assert ADMIN_SCOPE not in DEFAULT_SCOPE.split()


@pytest.mark.parametrize("scope", ["notes:read", "a b c", "x!#$%&'()*+,-./:;<=>?@[]^_`{|}~", ""])
def test_scope_tokens_of_rfc_6749(scope: str) -> None:
    check_syntax(scope)


@pytest.mark.parametrize(
    "scope",
    ['no"quote', "no\\backslash", "ctl\x01", "é", "del\x7f", "a\tb", "a\nb", "a\u00a0b", "\t"],
)
def test_characters_outside_rfc_6749_are_invalid_request(scope: str) -> None:
    with pytest.raises(InvalidRequest):
        check_syntax(scope)
