"""Fixtures of the unit tests only."""

from __future__ import annotations

import pytest

from app.tokens import Tokens
from tests.support.tokens import TOKEN_SETTINGS


@pytest.fixture
def tokens() -> Tokens:
    return Tokens(TOKEN_SETTINGS)


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """Unit tests touch neither PostgreSQL nor Redis: nothing to empty after them."""
