"""Unit tests of app/accounts/rotation.py: the verdict on a refresh token that did not rotate."""

from __future__ import annotations

import itertools

import pytest

from app.accounts.rotation import RefreshState, Verdict, judge


def test_no_session_is_ended() -> None:
    assert judge(None) is Verdict.ENDED


@pytest.mark.parametrize(
    ("is_current", "in_grace"), list(itertools.product([True, False], repeat=2))
)
def test_an_ended_session_is_ended_whatever_the_token(is_current: bool, in_grace: bool) -> None:
    assert judge(RefreshState(is_current, in_grace, replaced=False, ended=True)) is Verdict.ENDED


def test_the_current_token_is_current() -> None:
    state = RefreshState(is_current=True, in_grace=False, replaced=False, ended=False)
    assert judge(state) is Verdict.CURRENT


def test_a_token_whose_successor_is_unused_within_the_grace_gets_it_again() -> None:
    state = RefreshState(is_current=False, in_grace=True, replaced=False, ended=False)
    assert judge(state) is Verdict.RETRY


def test_a_token_whose_successor_was_used_or_out_of_the_grace_is_reuse() -> None:
    state = RefreshState(is_current=False, in_grace=False, replaced=False, ended=False)
    assert judge(state) is Verdict.REUSED


def test_a_database_null_grace_is_no_grace() -> None:
    # `previous_jti = $2` is NULL before the first rotation
    state = RefreshState(is_current=False, in_grace=None, replaced=None, ended=False)
    assert judge(state) is Verdict.REUSED


def test_a_token_an_older_release_rotated_is_refused_without_revoking() -> None:
    """Its successor is not the derived one: a retry can't be answered with the same pair,
    and nothing says the token was stolen."""
    state = RefreshState(is_current=False, in_grace=False, replaced=True, ended=False)
    assert judge(state) is Verdict.REPLACED
