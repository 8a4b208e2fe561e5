"""The in-process copy of the revocation state (one per worker). Pure: no I/O.

`app/revocation/feed.py` keeps the copy current from Redis pub/sub. The copy is trusted only
until a deadline that each heartbeat of a live subscription pushes forward; past it
(subscription down, snapshot not loaded, event loop stalled), `check` answers None and the
caller asks Redis instead.

Compact, so that a million revoked sessions fit in tens of MiB: an entry is a 60-bit
fingerprint of the session or user id (BLAKE2b, `fingerprint`), the form Redis's index holds
too (app/revocation/store.py), and entries are kept in buckets of BUCKET seconds by the time
they may be forgotten, so pruning drops whole buckets. Two ids share a fingerprint with a
chance of about n / 2^60 (1e-12 at a million entries): such a token would be refused, never
accepted, and the ids are random values the service chose, not the client.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable

from app.tokens import AccessClaims

BUCKET = 60  # seconds: an entry is forgotten at most this long after its time


def fingerprint(ident: str) -> int:
    digest = hashlib.blake2b(ident.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 4


def bucket_of(forget_at: float) -> int:
    """The bucket of an entry that matters until `forget_at` (epoch seconds)."""
    return math.ceil(forget_at / BUCKET)


class RevocationMirror:
    def __init__(self, ttl: int):
        self.ttl = ttl  # how long an entry matters: one access-token lifetime plus skew
        self.trusted_until = 0.0  # time.monotonic() deadline
        self._sessions: dict[int, set[int]] = {}  # bucket -> session fingerprints
        self._versions: dict[int, dict[int, int]] = {}  # bucket -> user fingerprint -> lowest
        self._next_prune = 0.0
        self.not_before = 0  # revoke-all: tokens issued (iat) before this are refused

    def check(self, claims: AccessClaims) -> bool | None:
        """True if revoked, False if not, None if the copy can't be trusted right now."""
        if time.monotonic() >= self.trusted_until:
            return None
        if claims.iat < self.not_before:
            return True
        sid = fingerprint(claims.sid)
        if any(sid in members for members in self._sessions.values()):
            return True
        if self._versions:
            user = fingerprint(claims.sub)
            for versions in self._versions.values():
                lowest = versions.get(user)
                if lowest is not None and claims.ver < lowest:
                    return True
        return False

    def revoke_session(self, sid: str, ttl: float | None = None) -> None:
        self.add_sessions(self._bucket(ttl), (fingerprint(sid),))

    def set_lowest_version(self, user_id: str, version: int, ttl: float | None = None) -> None:
        """Refuse the user's tokens below `version`; the lowest valid version only rises."""
        self.add_versions(self._bucket(ttl), ((fingerprint(user_id), version),))

    def add_sessions(self, bucket: int, fingerprints: Iterable[int]) -> None:
        self._sessions.setdefault(bucket, set()).update(fingerprints)
        self._maybe_prune()

    def add_versions(self, bucket: int, entries: Iterable[tuple[int, int]]) -> None:
        versions = self._versions.setdefault(bucket, {})
        for user, version in entries:
            if versions.get(user, -1) < version:
                versions[user] = version
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
        return sum(map(len, self._sessions.values())) + sum(map(len, self._versions.values()))

    def _bucket(self, ttl: float | None) -> int:
        return bucket_of(time.time() + (self.ttl if ttl is None else ttl))

    def _maybe_prune(self) -> None:
        now = time.time()
        if now < self._next_prune:
            return
        self._next_prune = now + 30
        current = now / BUCKET
        for buckets in (self._sessions, self._versions):
            for bucket in [b for b in buckets if b <= current]:
                del buckets[bucket]
