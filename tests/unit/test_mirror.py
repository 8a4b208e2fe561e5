"""Unit tests of app/revocation/mirror.py: the in-process revocation copy, on a fake clock."""

from __future__ import annotations

import pytest

from app.revocation import mirror as mirror_module
from app.revocation.mirror import (
    BUCKET,
    EXACT_LIMIT,
    GENERATION,
    RevocationMirror,
    fingerprint,
)
from tests.support.tokens import fake_claims

# -- RevocationMirror (pure; a fake clock for app.revocation.mirror only) ----------------------


class Clock:
    def __init__(self) -> None:
        self.wall = 1_000_000.0
        self.mono = 500.0

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(mirror_module, "time", fake)
    return fake


def test_an_untrusted_mirror_answers_none(clock: Clock) -> None:
    mirror = RevocationMirror(ttl=660)
    mirror.revoke_session("sid-1")
    mirror.set_lowest_version("u1", 5)
    assert not mirror.trusted
    # never trusted: no answer at all, revoked or not
    assert mirror.check(fake_claims(1, sid="sid-1")) is None
    assert mirror.check(fake_claims(2, sid="sid-2")) is None
    assert mirror.check(fake_claims(3, sid="sid-3", sub="u2")) is None

    mirror.trust_until(clock.mono + 1.5)
    assert mirror.check(fake_claims(1, sid="sid-1")) is True
    assert mirror.check(fake_claims(3, sid="sid-3", sub="u2")) is False

    mirror.distrust()
    assert not mirror.trusted
    assert mirror.check(fake_claims(1, sid="sid-1")) is None
    assert mirror.check(fake_claims(3, sid="sid-3", sub="u2")) is None


def test_trust_expires_at_its_deadline(clock: Clock) -> None:
    mirror = RevocationMirror(ttl=660)
    good = fake_claims()
    mirror.trust_until(clock.mono + 1.5)
    assert mirror.trusted
    clock.advance(1.499)
    assert mirror.trusted
    assert mirror.check(good) is False
    clock.advance(0.001)  # exactly the deadline: no longer trusted
    assert not mirror.trusted
    assert mirror.check(good) is None

    # an older deadline never shortens a later one (a late PONG of an earlier PING)
    mirror.trust_until(clock.mono + 1.0)
    mirror.trust_until(clock.mono + 0.2)
    clock.advance(0.5)
    assert mirror.trusted
    clock.advance(0.5)
    assert not mirror.trusted

    # distrust drops any deadline at once
    mirror.trust_until(clock.mono + 10)
    mirror.distrust()
    assert not mirror.trusted
    assert mirror.check(good) is None


def test_revoked_sessions_and_lowest_versions(clock: Clock) -> None:
    mirror = RevocationMirror(ttl=660)
    mirror.trust_until(clock.mono + 100)

    mirror.revoke_session("sid-dead")
    assert mirror.check(fake_claims(1, sid="sid-dead")) is True
    assert mirror.check(fake_claims(2, sid="sid-dead", sub="someone else", ver=99)) is True
    assert mirror.check(fake_claims(3, sid="sid-alive")) is False

    mirror.set_lowest_version("u1", 3)
    assert mirror.check(fake_claims(4, sub="u1", ver=2)) is True  # issued before: refused
    assert mirror.check(fake_claims(5, sub="u1", ver=0)) is True  # a token of no version
    assert mirror.check(fake_claims(6, sub="u1", ver=3)) is False  # issued after: accepted
    assert mirror.check(fake_claims(7, sub="u2", ver=0)) is False  # another user: untouched
    # whatever the clock said: versions, not times, decide
    assert mirror.check(fake_claims(8, sub="u1", ver=2, iat=10**9)) is True
    assert mirror.check(fake_claims(9, sub="u1", ver=3, iat=1)) is False

    # the lowest valid version only ever rises
    mirror.set_lowest_version("u1", 2)
    assert mirror.check(fake_claims(10, sub="u1", ver=2)) is True
    mirror.set_lowest_version("u1", 5)
    assert mirror.check(fake_claims(11, sub="u1", ver=4)) is True
    assert mirror.check(fake_claims(12, sub="u1", ver=5)) is False
    assert len(mirror) == 2  # one session, one user


def test_pruning_drops_entries_past_their_time_never_before(clock: Clock) -> None:
    mirror = RevocationMirror(ttl=660)
    mirror.trust_until(clock.mono + 100_000)
    mirror.revoke_session("short", ttl=10)  # first write: prunes (nothing), next in 30 s
    mirror.revoke_session("long", ttl=2000)
    mirror.set_lowest_version("u-short", 1, ttl=10)
    mirror.set_lowest_version("u-long", 1, ttl=2000)
    assert len(mirror) == 4

    clock.advance(11)  # past their time, not yet pruned (their generation, their bucket)
    assert mirror.check(fake_claims(1, sid="short", sub="x")) is True
    clock.advance(GENERATION + BUCKET)  # sessions: a GENERATION late at most; users: a BUCKET
    mirror.revoke_session("new")
    assert mirror.check(fake_claims(2, sid="short", sub="x")) is False
    assert mirror.check(fake_claims(3, sid="x", sub="u-short", ver=0)) is False
    assert mirror.check(fake_claims(4, sid="long", sub="x")) is True
    assert mirror.check(fake_claims(5, sid="x", sub="u-long", ver=0)) is True
    assert mirror.check(fake_claims(6, sid="new", sub="x")) is True
    assert len(mirror) == 3

    clock.advance(2000 + GENERATION)
    mirror.revoke_session("newer")
    assert mirror.check(fake_claims(7, sid="long", sub="x")) is False
    assert mirror.check(fake_claims(8, sid="x", sub="u-long", ver=0)) is False
    assert mirror.check(fake_claims(9, sid="newer", sub="x")) is True


def test_a_large_generation_is_a_bitmap_sure_only_of_what_it_does_not_hold(
    clock: Clock,
) -> None:
    mirror = RevocationMirror(ttl=660)
    mirror.trust_until(clock.mono + 100)
    bucket = int(clock.wall // BUCKET) + 5
    revoked = [f"revoked-{n}" for n in range(EXACT_LIMIT + 1000)]
    mirror.add_sessions(bucket, [fingerprint(sid) for sid in revoked])
    assert len(mirror) == len(revoked)
    # a revoked session is never "not revoked": the copy sends it to Redis
    assert {mirror.check(fake_claims(n, sid=sid, sub="x")) for n, sid in enumerate(revoked)} == {
        None
    }
    # and nearly every other one is answered by the copy
    others = [mirror.check(fake_claims(n, sid=f"alive-{n}", sub="x")) for n in range(20_000)]
    assert set(others) <= {False, None}
    assert others.count(None) < 0.01 * len(others), others.count(None)
    mirror.revoke_session("small")  # another generation: exact
    assert mirror.check(fake_claims(1, sid="small", sub="x")) is True


def test_revoke_all_refuses_every_token_issued_before_its_cut_off(clock: Clock) -> None:
    mirror = RevocationMirror(ttl=660)
    mirror.trust_until(clock.mono + 100)
    mirror.set_not_before(2000)
    assert mirror.check(fake_claims(1, iat=1999)) is True
    assert mirror.check(fake_claims(2, iat=2000)) is False  # issued at the cut-off or later
    mirror.set_not_before(1500)  # only ever rises
    assert mirror.check(fake_claims(3, iat=1999)) is True


def test_entries_are_60_bit_fingerprints_stable_across_processes() -> None:
    # the form Redis's index holds, written by one worker and read by every other
    assert fingerprint("sid-1") == fingerprint("sid-1") < 2**60
    assert fingerprint("sid-1") != fingerprint("sid-2")
    assert (
        fingerprint("abc")
        == int.from_bytes(__import__("hashlib").blake2b(b"abc", digest_size=8).digest(), "big") >> 4
    )


def test_bulk_loaded_buckets_answer_like_single_entries(clock: Clock) -> None:
    mirror = RevocationMirror(ttl=660)
    mirror.trust_until(clock.mono + 100)
    bucket = int(clock.wall // BUCKET) + 5
    mirror.add_sessions(bucket, [fingerprint(f"sid-{n}") for n in range(1000)])
    mirror.add_versions(bucket, [(fingerprint("u1"), 3), (fingerprint("u1"), 2)])
    assert len(mirror) == 1001
    assert mirror.check(fake_claims(1, sid="sid-999")) is True
    assert mirror.check(fake_claims(2, sid="sid-1000", sub="u2")) is False
    assert mirror.check(fake_claims(3, sid="x", sub="u1", ver=2)) is True  # the highest holds
    assert mirror.check(fake_claims(4, sid="x", sub="u1", ver=3)) is False
