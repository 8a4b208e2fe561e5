"""The in-process copy of the revocation state (one per worker). Pure: no I/O.

`app/revocation/feed.py` keeps the copy current from Redis pub/sub. The copy is trusted only
until a deadline that each heartbeat of a live subscription pushes forward; past it
(subscription down, snapshot not loaded, event loop stalled), `check` answers None and the
caller asks Redis instead.
"""

from __future__ import annotations

import time

from app.tokens import AccessClaims


class RevocationMirror:
    def __init__(self, ttl: int):
        self.ttl = ttl  # how long an entry matters: one access-token lifetime plus skew
        self.trusted_until = 0.0  # time.monotonic() deadline
        self._sessions: dict[str, float] = {}  # sid -> when the entry may be forgotten
        self._versions: dict[str, tuple[int, float]] = {}  # user -> (lowest valid, forget at)
        self._next_prune = 0.0
        self.not_before = 0  # revoke-all: tokens issued (iat) before this are refused

    def check(self, claims: AccessClaims) -> bool | None:
        """True if revoked, False if not, None if the copy can't be trusted right now."""
        if time.monotonic() >= self.trusted_until:
            return None
        if claims.sid in self._sessions or claims.iat < self.not_before:
            return True
        entry = self._versions.get(claims.sub)
        return entry is not None and claims.ver < entry[0]

    def revoke_session(self, sid: str, ttl: float | None = None) -> None:
        self._sessions[sid] = time.time() + (self.ttl if ttl is None else ttl)
        self._maybe_prune()

    def set_lowest_version(self, user_id: str, version: int, ttl: float | None = None) -> None:
        """Refuse the user's tokens below `version`; the lowest valid version only rises."""
        current = self._versions.get(user_id)
        if current is None or current[0] < version:
            self._versions[user_id] = (version, time.time() + (self.ttl if ttl is None else ttl))
        self._maybe_prune()

    def set_not_before(self, epoch: int) -> None:
        """Refuse every token issued before `epoch` (only ever rises)."""
        self.not_before = max(self.not_before, epoch)

    @property
    def trusted(self) -> bool:
        return time.monotonic() < self.trusted_until

    def trust_until(self, deadline: float) -> None:
        self.trusted_until = max(self.trusted_until, deadline)

    def distrust(self) -> None:
        self.trusted_until = 0.0

    def __len__(self) -> int:
        return len(self._sessions) + len(self._versions)

    def _maybe_prune(self) -> None:
        now = time.time()
        if now < self._next_prune:
            return
        self._next_prune = now + 30
        self._sessions = {sid: until for sid, until in self._sessions.items() if until > now}
        self._versions = {u: e for u, e in self._versions.items() if e[1] > now}
