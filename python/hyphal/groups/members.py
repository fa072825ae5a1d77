"""Who is in a group: members' signed, sealed adverts and the view they add up to.

Each member device publishes one advert: its name, its repo's writer key,
addresses to reach it, and whether it has left. The advert body is sealed
with the group's value key (§14.3), then signed by the device as a signed
value (§9.5) whose salt is the group's discovery key. So the same bytes can
sit in the DHT (a BEP 44-style mutable record) and travel between members,
and a DHT node that holds them learns nothing. A newer ``seq`` replaces an
older advert; leaving is an advert with the ``left`` flag, kept as a
tombstone so an older advert cannot bring the member back. The body's
layout is :class:`~hyphal.groups.messages.MemberAdvert` (docs/PROTOCOL.md §14.4).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from hyphal.errors import DecryptionError
from hyphal.groups.keys import GroupKeys
from hyphal.groups.messages import MemberAdvert, member_label
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair


def sign_advert(keys: GroupKeys, device: KeyPair, seq: int, advert: MemberAdvert) -> SignedValue:
    """The device's signed value for ``advert``: its body sealed for the group, salted by the group."""
    sealed = keys.seal_value(advert.encode(), member_label(device.public_key))
    return SignedValue.sign(device, seq, sealed, salt=keys.discovery_key)


def open_advert(keys: GroupKeys, signed: SignedValue) -> MemberAdvert:
    """Verify and open a member's signed value; any failure is a typed error and nothing is kept."""
    if signed.salt != keys.discovery_key:
        raise DecryptionError("signed value is not a member advert of this group")
    signed.verify()
    return MemberAdvert.decode(keys.open_value(signed.value, member_label(signed.public_key)))


class Change(Enum):
    JOINED = "joined"
    UPDATED = "updated"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class Member:
    key: bytes
    """The member device's public key (it signs the advert)."""
    seq: int
    advert: MemberAdvert
    signed: SignedValue = field(repr=False)
    """The advert as signed: what is passed on to other members and the DHT."""


@dataclass(slots=True)
class Membership:
    """One device's view of a group's members, merged from every advert it sees."""

    keys: GroupKeys
    _members: dict[bytes, Member] = field(default_factory=dict)

    def merge(self, signed: SignedValue) -> Change | None:
        """Take an advert from anyone (DHT, peer, ourselves); returns what changed, if anything.

        Raises :class:`SignatureError`, :class:`DecryptionError` or
        :class:`DecodeError` for an advert that does not verify; an older or
        equal ``seq`` than the one held changes nothing.
        """
        advert = open_advert(self.keys, signed)
        held = self._members.get(signed.public_key)
        if held is not None and signed.seq <= held.seq:
            return None
        self._members[signed.public_key] = Member(signed.public_key, signed.seq, advert, signed)
        if advert.left:
            return None if held is None or held.advert.left else Change.LEFT
        return Change.JOINED if held is None or held.advert.left else Change.UPDATED

    def get(self, key: bytes) -> Member | None:
        return self._members.get(key)

    def is_current(self, key: bytes) -> bool:
        """``key`` is a member's device key, and that member has not left."""
        member = self._members.get(key)
        return member is not None and not member.advert.left

    def current(self) -> list[Member]:
        """Members that have not left, by name then key."""
        live = [m for m in self._members.values() if not m.advert.left]
        return sorted(live, key=lambda m: (m.advert.name, m.key))

    def adverts(self) -> list[SignedValue]:
        """Every advert held, tombstones included: what to pass on to a peer."""
        return [m.signed for m in self._members.values()]


__all__ = [
    "Change",
    "Member",
    "Membership",
    "open_advert",
    "sign_advert",
]
