"""Unit tests of app/limits.py: what counts as one address, and what an attempt may do."""

from __future__ import annotations

import pytest

from app.limits import Count, Limits, address_group, login_wait, registration_wait

LIMITS = Limits()
FREE = Count(1, 900)


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("192.0.2.7", "192.0.2.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::ffff", "2001:db8:1:2::/64"),
        ("[2001:db8:1:2::1]", "2001:db8:1:2::/64"),  # Sanic brackets proxied IPv6
        ("::ffff:192.0.2.7", "192.0.2.7"),  # an IPv4 client of a dual-stack socket
        ("::1", "::/64"),
        ("mockserver", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
    ],
)
def test_address_group(address: str | None, group: str) -> None:
    assert address_group(address) == group


def test_the_limits_are_the_documented_ones() -> None:
    assert (LIMITS.per_account_address, LIMITS.per_address, LIMITS.per_account) == (10, 50, 100)
    assert LIMITS.window == 15 * 60
    assert (LIMITS.registrations, LIMITS.registration_window) == (20, 3600)


def test_up_to_each_limit_an_attempt_goes_ahead() -> None:
    at = Count(10, 300)
    assert (
        login_wait(
            LIMITS, pair=at, address=Count(50, 9), account=Count(100, 9), known_address=False
        )
        == 0
    )


@pytest.mark.parametrize("which", ["pair", "address", "account"])
def test_one_over_any_limit_waits_out_that_window(which: str) -> None:
    counts = {"pair": FREE, "address": FREE, "account": FREE}
    counts[which] = Count({"pair": 11, "address": 51, "account": 101}[which], 321)
    assert login_wait(LIMITS, **counts, known_address=False) == 321


def test_the_longest_window_wins() -> None:
    assert (
        login_wait(
            LIMITS, pair=Count(11, 100), address=Count(51, 700), account=FREE, known_address=False
        )
        == 700
    )


def test_the_account_throttle_spares_known_addresses() -> None:
    over = Count(500, 600)
    assert login_wait(LIMITS, pair=FREE, address=FREE, account=over, known_address=True) == 0
    assert login_wait(LIMITS, pair=FREE, address=FREE, account=over, known_address=False) == 600


def test_an_authenticated_check_counts_only_its_own_address() -> None:
    assert login_wait(LIMITS, pair=FREE, address=None, account=None, known_address=False) == 0
    assert (
        login_wait(LIMITS, pair=Count(11, 60), address=None, account=None, known_address=False)
        == 60
    )


def test_a_wait_is_never_zero_seconds_when_refused() -> None:
    # a key whose TTL just ran out (or -1): still "try again in a second", never "now"
    assert (
        login_wait(LIMITS, pair=Count(11, 0), address=FREE, account=FREE, known_address=False) == 1
    )
    assert registration_wait(LIMITS, Count(21, -1)) == 1
    assert registration_wait(LIMITS, Count(20, 50)) == 0


@pytest.mark.parametrize(
    ("address", "group"),
    [
        ("64:ff9b::c000:207", "192.0.2.7"),  # NAT64 (RFC 6052): the IPv4 client inside
        ("2002:c000:207::1", "192.0.2.7"),  # 6to4
    ],
)
def test_translated_ipv4_clients_count_as_themselves(address: str, group: str) -> None:
    assert address_group(address) == group


def test_successful_logins_are_limited_per_account() -> None:
    free = {"pair": FREE, "address": FREE, "account": FREE, "known_address": True}
    assert login_wait(LIMITS, **free, successes=Count(29, 40)) == 0
    assert login_wait(LIMITS, **free, successes=Count(30, 40)) == 40
