"""Unit tests of app/policy.py: which usernames and passwords accounts may have."""

from __future__ import annotations

import re

import pytest

from app.errors import PolicyViolation
from app.policy import (
    MAX_PASSWORD,
    MIN_PASSWORD,
    USERNAME_PATTERN,
    check_new_password,
    check_username,
    is_username,
    username_key,
)


@pytest.mark.parametrize("name", ["abc", "a" * 32, "Alice_1.x-y", "___", "1.2", "A-B"])
def test_names_within_the_rule(name: str) -> None:
    assert is_username(name)
    check_username(name)
    assert re.fullmatch(USERNAME_PATTERN.strip("^$"), name)


@pytest.mark.parametrize(
    "name", ["ab", "a" * 33, "al ice", "alİce", "ålice", "alice\n", "a/b", "", "a@b"]
)
def test_names_outside_the_rule(name: str) -> None:
    assert not is_username(name)
    with pytest.raises(PolicyViolation, match="3 to 32"):
        check_username(name)
    assert not re.fullmatch(USERNAME_PATTERN.strip("^$"), name)


@pytest.mark.parametrize("password", ["x" * MIN_PASSWORD, "y" * MAX_PASSWORD, "correct horse"])
def test_passwords_within_the_rule(password: str) -> None:
    check_new_password("alice", password)


@pytest.mark.parametrize(
    ("username", "password", "says"),
    [
        ("alice", "x" * (MIN_PASSWORD - 1), "at least"),
        ("alice", "x" * (MAX_PASSWORD + 1), "at most"),
        ("samesame", "samesame", "not be the username"),
        ("SameSame", "sAMEsAME", "not be the username"),
    ],
)
def test_passwords_outside_the_rule(username: str, password: str, says: str) -> None:
    with pytest.raises(PolicyViolation, match=says):
        check_new_password(username, password)


def test_per_account_state_ignores_case() -> None:
    assert username_key("Alice") == username_key("ALICE") == username_key("alice")
