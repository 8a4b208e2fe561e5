"""Unit tests of app/revocation/messages.py: the revocation feed's wire format."""

from __future__ import annotations

import pytest

from app.revocation.messages import (
    Revocation,
    channels,
    decode,
    decode_ack,
    encode,
    encode_ack,
)

SID = "0f0e8d52-4c1a-4d8e-9a55-3f1b2c3d4e5f"
USER = "5a1b2c3d-0000-4000-8000-000000000001"


@pytest.mark.parametrize(
    "revocation",
    [
        Revocation((SID,)),
        Revocation((SID, "another-sid"), ((USER, 1_700_000_000),)),
        Revocation((), ((USER, 0), ("u2", 1_700_000_001))),
        Revocation(not_before=1_800_000_000),
        Revocation((SID,), asker="worker-1"),
    ],
)
def test_round_trip(revocation: Revocation) -> None:
    assert decode(encode(revocation)) == revocation


def test_the_wire_format() -> None:
    revocation = Revocation((SID,), ((USER, 17),), id="abc", asker="w1")
    assert encode(revocation) == f"abc|s:{SID},u:{USER}:17|w1"


def test_each_revocation_gets_its_own_id() -> None:
    ids = {Revocation((SID,)).id for _ in range(100)}
    assert len(ids) == 100


def test_an_empty_revocation_is_false() -> None:
    assert not Revocation()
    assert Revocation((SID,))
    assert Revocation((), ((USER, 1),))


def test_unknown_item_kinds_are_skipped() -> None:
    assert decode(f"abc|s:{SID},k:kid-1,x,u:{USER}:5") == Revocation((SID,), ((USER, 5),), "abc")


def test_a_message_without_items_decodes_empty() -> None:
    assert decode("abc|") == Revocation((), (), "abc")
    assert decode("abc") == Revocation((), (), "abc")


def test_a_malformed_time_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        decode(f"abc|u:{USER}:soon")


def test_acks_carry_the_id_and_the_worker() -> None:
    assert decode_ack(encode_ack("abc", "w7")) == ("abc", "w7")


def test_channels_follow_the_key_prefix_in_one_hash_slot() -> None:
    feed = channels("p:")
    names = [feed.events, feed.workers, feed.beat("w1"), feed.ack("w1")]
    assert names == [
        "p:{feed}:revocations",
        "p:{feed}:workers",
        "p:{feed}:beat:w1",
        "p:{feed}:ack:w1",
    ]
    assert {name.partition("}")[0] for name in names} == {"p:{feed"}  # one hash tag


def test_the_global_cut_off_of_revoke_all() -> None:
    assert encode(Revocation(id="abc", not_before=1_800_000_000)) == "abc|g:1800000000|"
    assert Revocation(not_before=1)
    # an older writer's message has none; the highest of two wins
    assert decode(f"abc|s:{SID}").not_before is None
    assert decode("abc|g:5,g:9,g:7").not_before == 9
