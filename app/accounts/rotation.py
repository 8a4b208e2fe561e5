"""What to make of a refresh token that did not rotate its session. Pure: no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RefreshState:
    """A refresh token's standing in its session, as PostgreSQL records it."""

    is_current: bool  # the session's next refresh token is this one
    in_grace: bool | None  # its successor is the current one (unused), within the grace
    replaced: bool | None  # rotated to another token than its successor (an older release)
    ended: bool  # the session is revoked or expired, or its user disabled


class Verdict(enum.Enum):
    CURRENT = "current"  # still the session's token: rotate it
    RETRY = "retry"  # rotated moments ago and its successor unused: that same pair again
    REPLACED = "replaced"  # rotated by an older release: refused, no sign of theft
    REUSED = "reused"  # its successor was used, or it is older: theft, the session ends
    ENDED = "ended"  # the session is gone: refused


def judge(state: RefreshState | None) -> Verdict:
    """The verdict on a token, given its state (None: no such session)."""
    if state is None or state.ended:
        return Verdict.ENDED
    if state.is_current:
        return Verdict.CURRENT
    if state.in_grace:
        return Verdict.RETRY
    if state.replaced:
        return Verdict.REPLACED
    return Verdict.REUSED
