"""The wire format of the revocation feed. Pure: what is published, and how it is read back.

A revocation is published as one line, `<id>|<item>,<item>,...|<asker>`, where an item is
`s:<sid>` (a session ended), `u:<user id>:<version>` (the user's tokens of a lower version
are refused) or `g:<epoch seconds>` (every token issued before then is refused: revoke-all),
and `<asker>` is the worker that waits for the acknowledgements. An acknowledgement,
`<revocation id>|<worker id>`, goes to the asker's own channel only. Items of an unknown kind
are skipped, so that a newer writer can add kinds.

Every channel and the registry of live workers share one hash tag, `<prefix>{feed}`: in a Redis
Cluster they live in one slot, on one node, so sharded pub/sub (SPUBLISH/SSUBSCRIBE) keeps one
order for all of them, which the heartbeat's promise rests on (app/revocation/feed.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Channels:
    """The feed's shard channels and its registry of live workers, for one key prefix."""

    prefix: str

    @property
    def tag(self) -> str:
        return f"{self.prefix}{{feed}}"

    @property
    def events(self) -> str:
        return f"{self.tag}:revocations"

    @property
    def workers(self) -> str:
        """The sorted set of live workers, each scored by its last heartbeat (Redis time)."""
        return f"{self.tag}:workers"

    def beat(self, worker: str) -> str:
        return f"{self.tag}:beat:{worker}"

    def ack(self, worker: str) -> str:
        return f"{self.tag}:ack:{worker}"


def channels(prefix: str) -> Channels:
    return Channels(prefix)


@dataclass(frozen=True, slots=True)
class Revocation:
    sessions: tuple[str, ...] = ()
    users: tuple[tuple[str, int], ...] = ()  # (user id, lowest valid token version)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    not_before: int | None = None  # every token with an earlier `iat` is refused
    asker: str = ""  # the worker the acknowledgements go to

    def __bool__(self) -> bool:
        return bool(self.sessions or self.users or self.not_before)


def encode(revocation: Revocation) -> str:
    items = [f"s:{sid}" for sid in revocation.sessions]
    items += [f"u:{user_id}:{version}" for user_id, version in revocation.users]
    if revocation.not_before is not None:
        items.append(f"g:{revocation.not_before}")
    return f"{revocation.id}|{','.join(items)}|{revocation.asker}"


def decode(data: str) -> Revocation:
    """Read a published revocation; `ValueError` if a user item's version is not a number."""
    message_id, _, rest = data.partition("|")
    body, _, asker = rest.partition("|")
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
    return Revocation(tuple(sessions), tuple(users), message_id, not_before, asker)


def encode_ack(revocation_id: str, worker: str) -> str:
    return f"{revocation_id}|{worker}"


def decode_ack(data: str) -> tuple[str, str]:
    """(revocation id, the worker that applied it)."""
    revocation_id, _, worker = data.partition("|")
    return revocation_id, worker
