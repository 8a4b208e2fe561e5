"""Fixtures of the unit tests only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.config import ALGORITHMS
from app.tokens import Tokens
from tests.support.tokens import ACTIVE, key_of, make_tokens


@pytest.fixture(params=ALGORITHMS)
def tokens(request: pytest.FixtureRequest) -> Iterator[Tokens]:
    """Tokens of one key; every test that uses it runs once per supported algorithm, with
    `sign` signing by that key."""
    ACTIVE.append(key_of(request.param))
    yield make_tokens()
    ACTIVE.pop()


@pytest.fixture(autouse=True)
def clean_state() -> None:
    """Unit tests touch neither PostgreSQL nor Redis: nothing to empty after them."""
