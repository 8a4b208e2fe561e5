"""The account policy: which usernames and passwords are allowed. Pure; one place for routes,
the command line and the login limiter."""

from __future__ import annotations

import re

from app.errors import PolicyViolation

USERNAME = re.compile(r"[A-Za-z0-9_.\-]{3,32}")
USERNAME_RULE = "The username must be 3 to 32 of A-Z a-z 0-9 _ . -"
USERNAME_PATTERN = "^[A-Za-z0-9_.-]{3,32}$"  # the same rule, for the OpenAPI document
# A login may name any string up to this length; only the rule above decides who exists.
MAX_USERNAME_INPUT = 256
MIN_PASSWORD = 8
MAX_PASSWORD = 128  # longer input is refused before hashing


def is_username(name: str) -> bool:
    """Whether an account could have this name."""
    return USERNAME.fullmatch(name) is not None


def check_username(name: str) -> None:
    if not is_username(name):
        raise PolicyViolation(USERNAME_RULE)


def check_new_password(username: str, password: str) -> None:
    """A password that a new account, or a password change, may set."""
    if len(password) < MIN_PASSWORD:
        raise PolicyViolation(f"The password must have at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise PolicyViolation(f"The password must have at most {MAX_PASSWORD} characters.")
    if password.casefold() == username.casefold():
        raise PolicyViolation("The password must not be the username.")


def normalise_username(name: str) -> str | None:
    """The one spelling of a username everywhere (lookups, uniqueness, the limiter): lower-case
    ASCII. None for a name no account can have: outside the rule, that name is simply an
    unknown user, and no database's or library's idea of case (`İ`, `ß`, `K`) can map it
    onto a real one."""
    return name.lower() if USERNAME.fullmatch(name) else None


def username_key(name: str) -> str:
    """The spelling under which per-account state (failed logins) is kept; every name outside
    the rule shares one key, since no account can have it."""
    return normalise_username(name) or "-"
