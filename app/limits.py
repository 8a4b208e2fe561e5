"""The login limiter's policy: what is counted, and what an attempt may do. Pure.

Every attempt is counted before any password is hashed (increment, then compare), so no
number of parallel guesses gets past a limit, and a success takes its own count back:

- per account and address: 10 attempts in a fixed 15-minute window, then 429. One address
  can lock an account out only for itself, never for its owner elsewhere.
- per address, across accounts: 50 in the window (addresses are shared: NAT, offices).
- per account, across addresses: 100 in the window, and then only for addresses the account
  has not logged in from in the last 30 days: a soft throttle on distributed guessing that
  leaves the owner's own devices alone.
- registrations per address: 20 an hour (each costs one argon2 hash).

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
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{ip}/64", strict=False))
    return str(ip)


def login_wait(
    limits: Limits,
    *,
    pair: Count,
    address: Count | None,
    account: Count | None,
    known_address: bool,
) -> int:
    """Seconds until a login attempt may be made (0: go ahead), given the counts with this
    attempt. `address` and `account` are None where they do not apply (a password change:
    the caller is authenticated, only its own address's guesses count)."""
    waits = []
    if pair.value > limits.per_account_address:
        waits.append(pair.ttl)
    if address is not None and address.value > limits.per_address:
        waits.append(address.ttl)
    if account is not None and not known_address and account.value > limits.per_account:
        waits.append(account.ttl)
    return max((max(wait, 1) for wait in waits), default=0)


def registration_wait(limits: Limits, count: Count) -> int:
    return max(count.ttl, 1) if count.value > limits.registrations else 0
