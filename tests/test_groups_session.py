"""The group channel state machine: membership proof first, then advert exchange without loops."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.groups.keys import GroupKeys, new_group_secret
from hyphal.groups.members import Change, Membership, sign_advert
from hyphal.groups.messages import MemberAdvert, encode_advert, encode_auth
from hyphal.groups.session import AdvertAccepted, Close, GroupSession, PeerSynced, Send
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

GROUP_KEY = bytes(range(32))
HANDSHAKE = os.urandom(32)


def sends(actions: list[object]) -> list[bytes]:
    return [a.data for a in actions if isinstance(a, Send)]


def advert(device: KeyPair, seq: int, name: str, keys: GroupKeys, left: bool = False) -> SignedValue:
    return sign_advert(keys, device, seq, MemberAdvert(name, bytes(32), (), left))


def pair(keys_a: GroupKeys, keys_b: GroupKeys) -> tuple[GroupSession, GroupSession]:
    """Two ends of one connection; ``view(session)`` is the membership each one feeds."""
    a = GroupSession(keys_a, Membership(keys_a), HANDSHAKE, True)
    b = GroupSession(keys_b, Membership(keys_b), HANDSHAKE, False)
    return a, b


def view(session: GroupSession) -> Membership:
    return session.membership


def deliver(to: GroupSession, actions: list[object]) -> list[object]:
    out: list[object] = []
    for data in sends(actions):
        out += to.receive(data)
    return out


def test_members_authenticate_then_exchange_adverts_once() -> None:
    keys = GroupKeys(GROUP_KEY, new_group_secret())
    a, b = pair(keys, keys)
    alice, bob = KeyPair.generate(), KeyPair.generate()
    view(a).merge(advert(alice, 1, "alice", keys))
    view(b).merge(advert(bob, 1, "bob", keys))
    from_b = deliver(a, b.start())  # a learns b is a member; sends its adverts
    assert a.authenticated
    from_a = deliver(b, a.start())
    assert b.authenticated
    got_by_b = deliver(b, from_b)
    got_by_a = deliver(a, from_a)
    assert [x.change for x in got_by_b if isinstance(x, AdvertAccepted)] == [Change.JOINED]
    assert [x.change for x in got_by_a if isinstance(x, AdvertAccepted)] == [Change.JOINED]
    assert {m.advert.name for m in view(a).current()} == {"alice", "bob"}
    # Repeating an advert is accepted silently, never passed on again: no gossip loops.
    assert b.receive(encode_advert(advert(bob, 1, "bob", keys))) == []
    update = advert(alice, 2, "alice (laptop)", keys)
    assert sends(b.share(update)) == [encode_advert(update)]
    accepted = deliver(a, b.share(update))
    assert accepted == [AdvertAccepted(update, Change.UPDATED)]
    assert deliver(a, b.share(update)) == []  # the second time it is old news


def test_a_stranger_learns_nothing_and_is_closed() -> None:
    keys = GroupKeys(GROUP_KEY, new_group_secret())
    member, stranger = pair(keys, GroupKeys(GROUP_KEY, new_group_secret()))
    view(member).merge(advert(KeyPair.generate(), 1, "alice", keys))
    assert member.share(advert(KeyPair.generate(), 1, "x", keys)) == []  # nothing before AUTH
    actions = deliver(member, stranger.start())
    assert actions == [Close("not a member: wrong group capability")]
    assert member.closed
    assert member.receive(encode_auth(bytes(32))) == []


def test_a_reflected_or_replayed_mac_is_refused() -> None:
    keys = GroupKeys(GROUP_KEY, new_group_secret())
    a, _ = pair(keys, keys)
    (own_auth,) = sends(a.start())
    assert isinstance(a.receive(own_auth)[0], Close)  # our own MAC sent back is not the peer's
    other = GroupSession(keys, Membership(keys), os.urandom(32), False)
    replay = GroupSession(keys, Membership(keys), HANDSHAKE, False)
    assert isinstance(other.receive(sends(replay.start())[0])[0], Close)  # from another connection


def test_bad_input_after_auth_closes_the_session() -> None:
    keys = GroupKeys(GROUP_KEY, new_group_secret())
    for bad in (b"", b"\x09", b"\x01" + bytes(32), b"\x02garbage", b"\x02" + bytes(5000)):
        a, b = pair(keys, keys)
        deliver(a, b.start())
        assert a.authenticated
        assert isinstance(a.receive(bad)[-1], Close)
    forged_value = advert(KeyPair.generate(), 1, "x", keys)
    forged = SignedValue(
        forged_value.public_key, 9, forged_value.value, forged_value.signature, forged_value.salt
    )
    a, b = pair(keys, keys)
    deliver(a, b.start())
    assert isinstance(a.receive(encode_advert(forged))[0], Close)
    assert view(a).current() == []


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=4), st.booleans())
def test_any_bytes_give_actions_never_exceptions(messages: list[bytes], authenticated: bool) -> None:
    keys = GroupKeys(GROUP_KEY, new_group_secret())
    a, b = pair(keys, keys)
    if authenticated:
        deliver(a, b.start())
    for message in messages:
        actions = a.receive(message)
        assert all(isinstance(x, (Send, AdvertAccepted, PeerSynced, Close)) for x in actions)
    assert view(a).current() == []  # nothing unverified is ever taken in
