"""The in-process copy of the revocation state (one per worker). Pure: no I/O.

`app/revocation/feed.py` keeps the copy current from Redis pub/sub. The copy is trusted only
until a deadline that each heartbeat of a live subscription pushes forward; past it
(subscription down, snapshot not loaded, event loop stalled), `check` answers None and the
caller asks Redis instead.

Compact, so that a million revoked sessions fit in a few MiB: an entry is a 60-bit
fingerprint of the session or user id (BLAKE2b, `fingerprint`), the form Redis's index holds
too (app/revocation/store.py). Sessions are kept in generations of GENERATION seconds by the
time they may be forgotten, so pruning drops whole generations. A generation holds its
fingerprints exactly while it has at most EXACT_LIMIT of them, and beyond that as a bitmap
of 2^24 bits where each sets two bits (a Bloom filter, 2 MiB): then `check` is sure only of
"not revoked", and answers "ask Redis" (None) for a token that may be revoked: always for a
revoked one, and for about 0.5% of the others at a million live marks. Two exactly held ids
share a fingerprint with a chance of about n / 2^60: such a token would be refused, never
accepted, and the ids are random values the service chose, not the client.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Iterable

from app.tokens import AccessClaims

BUCKET = 60  # seconds: an entry is forgotten at most this long after its time (Redis's index)
GENERATION = 5 * BUCKET  # seconds of the copy's generations of sessions
EXACT_LIMIT = 65_536  # fingerprints a generation holds exactly; beyond, a bitmap
BITS = 1 << 24  # bits of a generation's bitmap
_MASK = BITS - 1


def fingerprint(ident: str) -> int:
    digest = hashlib.blake2b(ident.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") >> 4


def bucket_of(forget_at: float) -> int:
    """The bucket of an entry that matters until `forget_at` (epoch seconds)."""
    return math.ceil(forget_at / BUCKET)


class Generation:
    """The revoked sessions forgotten in one GENERATION: exact, or a bitmap once large."""

    __slots__ = ("bits", "count", "exact")

    def __init__(self) -> None:
        self.exact: set[int] = set()
        self.bits: bytearray | None = None
        self.count = 0

    def add(self, fingerprints: Iterable[int]) -> None:
        if self.bits is None:
            before = len(self.exact)
            self.exact.update(fingerprints)
            self.count += len(self.exact) - before
            if len(self.exact) > EXACT_LIMIT:
                self.bits = bytearray(BITS // 8)
                self._set(self.exact)
                self.exact = set()
            return
        self.count += self._set(fingerprints)

    def _set(self, fingerprints: Iterable[int]) -> int:
        bits, added = self.bits, 0
        assert bits is not None
        for fp in fingerprints:
            low, high = fp & _MASK, (fp >> 24) & _MASK
            bits[low >> 3] |= 1 << (low & 7)
            bits[high >> 3] |= 1 << (high & 7)
            added += 1
        return added

    def holds(self, fp: int) -> bool | None:
        """True: held exactly; False: certainly not held; None: perhaps (the bitmap's)."""
        bits = self.bits
        if bits is None:
            return fp in self.exact
        low, high = fp & _MASK, (fp >> 24) & _MASK
        if bits[low >> 3] >> (low & 7) & 1 and bits[high >> 3] >> (high & 7) & 1:
            return None
        return False


class RevocationMirror:
    def __init__(self, ttl: int):
        self.ttl = ttl  # how long an entry matters: one access-token lifetime plus skew
        self.trusted_until = 0.0  # time.monotonic() deadline
        self._sessions: dict[int, Generation] = {}  # generation -> its sessions
        self._versions: dict[int, dict[int, int]] = {}  # bucket -> user fingerprint -> lowest
        self._next_prune = 0.0
        self.not_before = 0  # revoke-all: tokens issued (iat) before this are refused

    def check(self, claims: AccessClaims) -> bool | None:
        """True if revoked, False if not, None if the copy can't tell right now (not
        trusted, or a large generation that may hold the session): ask Redis."""
        if time.monotonic() >= self.trusted_until:
            return None
        if claims.iat < self.not_before:
            return True
        if self._versions:
            user = fingerprint(claims.sub)
            for versions in self._versions.values():
                lowest = versions.get(user)
                if lowest is not None and claims.ver < lowest:
                    return True
        sid, unsure = fingerprint(claims.sid), False
        for generation in self._sessions.values():
            held = generation.holds(sid)
            if held:
                return True
            unsure = unsure or held is None
        return None if unsure else False

    def revoke_session(self, sid: str, ttl: float | None = None) -> None:
        self.add_sessions(self._bucket(ttl), (fingerprint(sid),))

    def set_lowest_version(self, user_id: str, version: int, ttl: float | None = None) -> None:
        """Refuse the user's tokens below `version`; the lowest valid version only rises."""
        self.add_versions(self._bucket(ttl), ((fingerprint(user_id), version),))

    def add_sessions(self, bucket: int, fingerprints: Iterable[int]) -> None:
        generation = bucket * BUCKET // GENERATION + 1  # forgotten at its end, never before
        self._sessions.setdefault(generation, Generation()).add(fingerprints)
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
        sessions = sum(generation.count for generation in self._sessions.values())
        return sessions + sum(map(len, self._versions.values()))

    def _bucket(self, ttl: float | None) -> int:
        return bucket_of(time.time() + (self.ttl if ttl is None else ttl))

    def _maybe_prune(self) -> None:
        now = time.time()
        if now < self._next_prune:
            return
        self._next_prune = now + 30
        for generation in [g for g in self._sessions if g * GENERATION <= now]:
            del self._sessions[generation]
        for bucket in [b for b in self._versions if b * BUCKET <= now]:
            del self._versions[bucket]
