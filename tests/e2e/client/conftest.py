"""Fixtures of the client tests: two real servers for each module, one whose access tokens
expire while we watch, one with the defaults."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import live_server


@pytest.fixture(scope="module")
def server(database: str) -> Iterator[str]:
    """Two workers, access tokens that live 2 seconds."""
    with live_server(workers=2, ACCESS_TOKEN_TTL="2") as base:
        yield base


@pytest.fixture(scope="module")
def default_server(database: str) -> Iterator[str]:
    """Two workers, the default settings (access tokens live 600 seconds)."""
    with live_server(workers=2) as base:
        yield base
