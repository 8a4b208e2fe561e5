"""The login limiter's policy: what is counted, and what an attempt may do. Pure.

Every attempt is counted before any password is hashed (increment, then compare), so no
number of parallel guesses gets past a limit, and a success takes its own count back:

- per account and address: 10 attempts in a fixed 15-minute window, then 429. One address
  can lock an account out only for itself, never for its owner elsewhere.
- per address, across accounts: 50 in the window (addresses are shared: NAT, offices).
- per account, across addresses: 100 in the window, and then only for addresses the account
  has not logged in from in the last 30 days: a soft throttle on distributed guessing that
  leaves the owner's own devices alone.
- successful logins per account: 30 a minute (a right password still costs a hash).
- registrations per address: 20 an hour (each costs one argon2 hash).
- a password change counts its wrong current passwords per account and address, and per
  account (the caller is authenticated: guesses from elsewhere can't block it).

An address is the client's (behind a proxy, see PROXIES_COUNT and friends); IPv6 addresses
count by their /64, which one host usually holds whole.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    per_account_address: int = 10
    per_address: int = 50
    per_account: int = 100
    window: int = 15 * 60
    known_for: int = 30 * 86400
    successes: int = 30
    success_window: int = 60
    registrations: int = 20
    registration_window: int = 60 * 60


@dataclass(frozen=True, slots=True)
class Count:
    """One counter after this attempt was counted: its value and its seconds left."""

    value: int
    ttl: int


def address_group(address: str | None) -> str:
    """What counts as one address: an IPv4 address, an IPv6 /64, or "unknown"."""
    try:
        ip = ipaddress.ip_address((address or "").strip("[]"))
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or _nat64(ip)
        if embedded is not None:  # an IPv4 client behind a translation: that client
            return str(embedded)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix


def _nat64(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF) if ip in _NAT64 else None


def login_wait(
    limits: Limits,
    *,
    pair: Count,
    address: Count | None,
    account: Count | None,
    known_address: bool,
    successes: Count | None = None,
) -> int:
    """Seconds until a login attempt may be made (0: go ahead), given the counts with this
    attempt (`successes`: the account's successful logins so far, not counting this one).
    `address` is None where it does not apply (a password change: the caller is
    authenticated)."""
    waits = []
    if successes is not None and successes.value >= limits.successes:
        waits.append(successes.ttl)
    if pair.value > limits.per_account_address:
        waits.append(pair.ttl)
    if address is not None and address.value > limits.per_address:
        waits.append(address.ttl)
    if account is not None and not known_address and account.value > limits.per_account:
        waits.append(account.ttl)
    return max((max(wait, 1) for wait in waits), default=0)


def first_refusal(
    limits: Limits, *, pair: Count, address: Count | None, account: Count | None
) -> bool:
    """Whether this attempt is the first that one of its counters refuses in its window: the
    one refusal worth an audit event (a flood of refused guesses records one, not each)."""
    return (
        pair.value == limits.per_account_address + 1
        or (address is not None and address.value == limits.per_address + 1)
        or (account is not None and account.value == limits.per_account + 1)
    )


def registration_wait(limits: Limits, count: Count) -> int:
    return max(count.ttl, 1) if count.value > limits.registrations else 0
