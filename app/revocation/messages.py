"""The wire format of the revocation feed. Pure: what is published, and how it is read back.

A revocation is published as one line, `<id>|<item>,<item>,...`, where an item is
`s:<sid>` (a session ended), `u:<user id>:<version>` (the user's tokens of a lower version
are refused) or `g:<epoch seconds>` (every token issued before then is refused: revoke-all).
An acknowledgement is the revocation's id alone, on its own channel. Items of an unknown kind
are skipped, so that a newer writer can add kinds.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


def channels(prefix: str) -> tuple[str, str]:
    """(revocations, acknowledgements): the two pub/sub channels of a key prefix."""
    events = f"{prefix}revocations"
    return events, f"{events}:acks"


@dataclass(frozen=True, slots=True)
class Revocation:
    sessions: tuple[str, ...] = ()
    users: tuple[tuple[str, int], ...] = ()  # (user id, lowest valid token version)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    not_before: int | None = None  # every token with an earlier `iat` is refused

    def __bool__(self) -> bool:
        return bool(self.sessions or self.users or self.not_before)


def encode(revocation: Revocation) -> str:
    items = [f"s:{sid}" for sid in revocation.sessions]
    items += [f"u:{user_id}:{version}" for user_id, version in revocation.users]
    if revocation.not_before is not None:
        items.append(f"g:{revocation.not_before}")
    return f"{revocation.id}|{','.join(items)}"


def decode(data: str) -> Revocation:
    """Read a published revocation; `ValueError` if a user item's version is not a number."""
    message_id, _, body = data.partition("|")
    sessions: list[str] = []
    users: list[tuple[str, int]] = []
    not_before: int | None = None
    for item in body.split(","):
        kind, _, rest = item.partition(":")
        if kind == "s":
            sessions.append(rest)
        elif kind == "u":
            user_id, _, version = rest.partition(":")
            users.append((user_id, int(version)))
        elif kind == "g":
            not_before = max(int(rest), not_before or 0)
    return Revocation(tuple(sessions), tuple(users), message_id, not_before)


def encode_ack(revocation_id: str) -> str:
    return revocation_id


def decode_ack(data: str) -> str:
    return data
