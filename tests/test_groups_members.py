"""Member adverts: sealed for the group, signed by the device, merged by seq with tombstones."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.errors import DecodeError, DecryptionError, HyphalError, InvalidInput, SignatureError
from hyphal.groups.keys import GroupKeys, new_group_secret
from hyphal.groups.members import Change, Membership, open_advert, sign_advert
from hyphal.groups.messages import MemberAdvert
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

GROUP = GroupKeys(bytes(range(32)), new_group_secret())
ALICE, BOB = KeyPair.generate(), KeyPair.generate()
REPO = bytes(range(32, 64))


def advert(name: str = "alice's laptop", addresses: tuple[str, ...] = (), left: bool = False) -> MemberAdvert:
    return MemberAdvert(name, REPO, addresses, left)


@settings(max_examples=100, deadline=None)
@given(
    name=st.text(max_size=20),
    addresses=st.lists(st.sampled_from(["127.0.0.1:1", "[::1]:65535", "h.example:80"]), max_size=8),
    left=st.booleans(),
    backup=st.booleans(),
)
def test_advert_round_trip(name: str, addresses: list[str], left: bool, backup: bool) -> None:
    a = MemberAdvert(name, REPO, tuple(addresses), left, backup)
    assert MemberAdvert.decode(a.encode()) == a


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_advert_garbage_is_refused_or_canonical(data: bytes) -> None:
    try:
        decoded = MemberAdvert.decode(data)
    except DecodeError:
        return
    assert decoded.encode() == data


def test_signed_advert_hides_everything_but_the_device_key() -> None:
    signed = sign_advert(GROUP, ALICE, 1, advert(addresses=("10.0.0.1:7300",)))
    assert signed.public_key == ALICE.public_key
    assert signed.salt == GROUP.discovery_key
    wire = signed.encode()
    for secret_part in (b"alice", REPO, b"10.0.0.1"):
        assert secret_part not in wire
    assert open_advert(GROUP, SignedValue.decode(wire)).name == "alice's laptop"


def test_forged_foreign_and_swapped_adverts_are_refused() -> None:
    signed = sign_advert(GROUP, ALICE, 1, advert())
    forged = SignedValue(signed.public_key, 2, signed.value, signed.signature, signed.salt)
    with pytest.raises(SignatureError):
        open_advert(GROUP, forged)
    other_group = GroupKeys(GROUP.group_key, new_group_secret())
    with pytest.raises(DecryptionError):
        open_advert(other_group, signed)
    # Bob re-signs Alice's sealed body as his own: the body is bound to Alice's key.
    stolen = SignedValue.sign(BOB, 1, signed.value, salt=GROUP.discovery_key)
    with pytest.raises(DecryptionError):
        open_advert(GROUP, stolen)


def test_membership_merges_by_seq_and_keeps_tombstones() -> None:
    view = Membership(GROUP)
    assert view.merge(sign_advert(GROUP, ALICE, 1, advert())) is Change.JOINED
    assert view.merge(sign_advert(GROUP, ALICE, 1, advert("renamed"))) is None  # same seq
    assert view.merge(sign_advert(GROUP, ALICE, 2, advert("renamed"))) is Change.UPDATED
    assert view.merge(sign_advert(GROUP, BOB, 5, advert("bob"))) is Change.JOINED
    assert [m.advert.name for m in view.current()] == ["bob", "renamed"]
    assert view.merge(sign_advert(GROUP, ALICE, 3, advert(left=True))) is Change.LEFT
    assert view.merge(sign_advert(GROUP, ALICE, 2, advert("renamed"))) is None  # no resurrection by replay
    assert [m.advert.name for m in view.current()] == ["bob"]
    assert len(view.adverts()) == 2  # the tombstone is passed on too
    assert view.merge(sign_advert(GROUP, ALICE, 4, advert("back"))) is Change.JOINED


def test_bad_adverts_raise_typed_errors_only() -> None:
    view = Membership(GROUP)
    good = sign_advert(GROUP, ALICE, 1, advert())
    for bad in (
        SignedValue.sign(ALICE, 1, b"not sealed", salt=GROUP.discovery_key),
        SignedValue.sign(ALICE, 1, good.value, salt=bytes(32)),
    ):
        with pytest.raises(HyphalError):
            view.merge(bad)
    assert view.current() == []
    with pytest.raises(InvalidInput):
        advert(addresses=("nope",))
