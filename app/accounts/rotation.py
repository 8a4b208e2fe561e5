"""What to make of a refresh token that did not rotate its session. Pure: no I/O, no clock
but the one passed in."""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The PostgreSQL step of a refresh is cut off after ROTATE_TIMEOUT. So a used-token mark
# older than STALE_MARK_SECONDS whose session still names the token as current was left by
# an attempt that failed half-way (a Redis write that timed out and landed later, or an undo
# that failed): the token is still good.
ROTATE_TIMEOUT = 3.0
STALE_MARK_SECONDS = ROTATE_TIMEOUT + 2.0
IN_FLIGHT_POLL = 0.05


@dataclass(frozen=True, slots=True)
class RefreshState:
    """A refresh token's standing in its session, as PostgreSQL records it."""

    is_current: bool  # the session's next refresh token is this one
    in_grace: bool | None  # the one just replaced, within REFRESH_REUSE_GRACE (NULL: none)
    ended: bool  # the session is revoked or expired, or its user disabled


class Verdict(enum.Enum):
    CURRENT = "current"  # still the session's token: usable
    JUST_USED = "just_used"  # replaced moments ago: refused, the session is kept
    REUSED = "reused"  # replaced earlier: theft, the session is revoked
    ENDED = "ended"  # the session is gone: refused


def judge(state: RefreshState | None) -> Verdict:
    """The verdict on a token, given its state (None: no such session)."""
    if state is None or state.ended:
        return Verdict.ENDED
    if state.is_current:
        return Verdict.CURRENT
    if state.in_grace:
        return Verdict.JUST_USED
    return Verdict.REUSED


def stale_at(marked_at: float, now: float) -> float:
    """When a used mark written at `marked_at` (by its writer's clock) counts as a leftover.

    Never later than STALE_MARK_SECONDS from now, whatever the writer's clock said."""
    return min(marked_at, now) + STALE_MARK_SECONDS
