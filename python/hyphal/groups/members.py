"""Who is in a group: members' signed, sealed adverts and the view they add up to.

Each member device publishes one advert: its name, its repo's writer key,
addresses to reach it, and whether it has left. The advert body is sealed
with the group's value key (§14.3), then signed by the device as a signed
value (§9.5) whose salt is the group's discovery key. So the same bytes can
sit in the DHT (a BEP 44-style mutable record) and travel between members,
and a DHT node that holds them learns nothing. A newer ``seq`` replaces an
older advert; leaving is an advert with the ``left`` flag, kept as a
tombstone so an older advert cannot bring the member back. Layout in
docs/PROTOCOL.md §14.4.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum

from hyphal.errors import DecodeError, DecryptionError, InvalidInput
from hyphal.groups.keys import GroupKeys
from hyphal.net.address import parse_address
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

ADVERT_VERSION = 1
MAX_MEMBER_NAME = 64
MAX_ADDRESSES = 8
MAX_ADDRESS_LEN = 64
_FLAG_LEFT = 0x01
_FLAG_BACKUP = 0x02
_KNOWN_FLAGS = _FLAG_LEFT | _FLAG_BACKUP
_FIXED = struct.Struct("<BB32s")  # version, flags, repo writer key


def _label(member_key: bytes) -> bytes:
    return b"member " + member_key


@dataclass(frozen=True, slots=True)
class MemberAdvert:
    """What a member device says about itself (the sealed body of its signed value)."""

    name: str
    repo_writer: bytes
    """The public key that signs the member's repo feed (:func:`~hyphal.groups.repo.repo_manifest`);
    all zero for a backup server, which has no repo."""
    addresses: tuple[str, ...] = ()
    left: bool = False
    backup: bool = False
    """A backup server members authorised, not a person's device."""

    def __post_init__(self) -> None:
        if len(self.repo_writer) != 32:
            raise InvalidInput("a repo writer key is 32 bytes")
        if len(self.name.encode("utf-8", "surrogatepass")) > MAX_MEMBER_NAME:
            raise InvalidInput(f"a member name is at most {MAX_MEMBER_NAME} bytes of UTF-8")
        if len(self.addresses) > MAX_ADDRESSES:
            raise InvalidInput(f"an advert lists at most {MAX_ADDRESSES} addresses")
        for address in self.addresses:
            if len(address.encode("utf-8", "surrogatepass")) > MAX_ADDRESS_LEN:
                raise InvalidInput(f"an address is at most {MAX_ADDRESS_LEN} bytes")
            parse_address(address)

    def encode(self) -> bytes:
        flags = (_FLAG_LEFT if self.left else 0) | (_FLAG_BACKUP if self.backup else 0)
        addresses = [_str8(a) for a in self.addresses]
        return b"".join(
            (
                _FIXED.pack(ADVERT_VERSION, flags, self.repo_writer),
                _str8(self.name),
                bytes((len(addresses),)),
                *addresses,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> MemberAdvert:
        if len(data) < _FIXED.size:
            raise DecodeError("member advert is truncated")
        version, flags, repo_writer = _FIXED.unpack_from(data)
        if version != ADVERT_VERSION:
            raise DecodeError(f"member advert version {version} is not supported")
        if flags & ~_KNOWN_FLAGS:
            raise DecodeError(f"unknown member advert flags {flags:#x}")
        name, pos = _read_str8(data, _FIXED.size)
        if pos >= len(data):
            raise DecodeError("member advert is truncated")
        count, pos = data[pos], pos + 1
        addresses = []
        for _ in range(count):
            address, pos = _read_str8(data, pos)
            addresses.append(address)
        if pos != len(data):
            raise DecodeError("trailing bytes after member advert")
        try:
            return cls(
                name, repo_writer, tuple(addresses), bool(flags & _FLAG_LEFT), bool(flags & _FLAG_BACKUP)
            )
        except InvalidInput as exc:
            raise DecodeError(f"bad member advert: {exc}") from None


def _str8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return bytes((len(raw),)) + raw


def _read_str8(data: bytes, pos: int) -> tuple[str, int]:
    if pos >= len(data):
        raise DecodeError("member advert is truncated")
    size = data[pos]
    raw = data[pos + 1 : pos + 1 + size]
    if len(raw) != size:
        raise DecodeError("member advert is truncated")
    try:
        return raw.decode("utf-8"), pos + 1 + size
    except UnicodeDecodeError:
        raise DecodeError("member advert text is not UTF-8") from None


def sign_advert(keys: GroupKeys, device: KeyPair, seq: int, advert: MemberAdvert) -> SignedValue:
    """The device's signed value for ``advert``: its body sealed for the group, salted by the group."""
    sealed = keys.seal_value(advert.encode(), _label(device.public_key))
    return SignedValue.sign(device, seq, sealed, salt=keys.discovery_key)


def open_advert(keys: GroupKeys, signed: SignedValue) -> MemberAdvert:
    """Verify and open a member's signed value; any failure is a typed error and nothing is kept."""
    if signed.salt != keys.discovery_key:
        raise DecryptionError("signed value is not a member advert of this group")
    signed.verify()
    return MemberAdvert.decode(keys.open_value(signed.value, _label(signed.public_key)))


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
    "MemberAdvert",
    "Membership",
    "open_advert",
    "sign_advert",
]
