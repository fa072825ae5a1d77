"""The group channel's state machine (sans-I/O): prove membership, then swap member adverts.

One :class:`GroupSession` runs per connection and group, on the channel
``hyphal/group/1`` whose id is the group's discovery key. Each side first
sends ``AUTH``: a MAC over the connection's handshake hash under the group's
capability key (§14.3), which only holders of the group secret can make.
Nothing else is sent before the peer's ``AUTH`` verifies, so a stranger who
opens the channel learns not even the members' device keys. Then each side
sends every advert it holds, then ``SYNCED``, and from then on every advert
that changes its view. ``peer_synced`` tells a caller that it has seen the
peer's whole view (say, before fetching every member's repo). A wrong MAC
or an advert that does not verify ends the session; stale adverts are
ignored. The group's membership log (§17.2) travels the same way: every
entry held goes before the adverts, and each new one as it is accepted;
an entry the log refuses (a forged approval) ends the session too. The
messages are in :mod:`hyphal.groups.messages` (docs/PROTOCOL.md §14.5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from typing_extensions import Buffer

from hyphal.errors import DecodeError, HyphalError
from hyphal.groups.keys import GroupKeys
from hyphal.groups.members import Change, Membership
from hyphal.groups.membership import Entry, MembershipLog
from hyphal.groups.messages import (
    GroupAdvert,
    GroupAuth,
    GroupEntry,
    GroupMessage,
    GroupSynced,
    decode_group_message,
    encode_advert,
    encode_auth,
    encode_entry,
    encode_synced,
)
from hyphal.signed_value import SignedValue

PROTOCOL = "hyphal/group/1"


@dataclass(frozen=True, slots=True)
class Send:
    data: bytes


@dataclass(frozen=True, slots=True)
class AdvertAccepted:
    """The peer's advert is newer than what we held: pass it on to the other sessions.

    ``change`` is what it changed in the view of current members, if anything
    (a first-seen or updated tombstone changes nothing visible, yet spreads).
    """

    advert: SignedValue
    change: Change | None


@dataclass(frozen=True, slots=True)
class EntriesAccepted:
    """Membership log entries new here (the peer's, and any that waited for it): pass them on."""

    entries: tuple[Entry, ...]


@dataclass(frozen=True, slots=True)
class PeerSynced:
    """The peer has sent its whole view (its ``SYNCED``)."""


@dataclass(frozen=True, slots=True)
class Close:
    """End the session: the peer broke the protocol or is not a member."""

    reason: str


Action: TypeAlias = Send | AdvertAccepted | EntriesAccepted | PeerSynced | Close


class GroupSession:
    """The group channel with one peer. Feed it :meth:`receive`; perform what it returns."""

    def __init__(
        self,
        keys: GroupKeys,
        membership: Membership,
        handshake_hash: bytes,
        is_initiator: bool,
        log: MembershipLog | None = None,
    ) -> None:
        self._keys = keys
        self.membership = membership
        self.log = log if log is not None else MembershipLog(keys.group_key)
        self._handshake_hash = handshake_hash
        self._is_initiator = is_initiator
        self.authenticated = False
        self.peer_synced = False
        """The peer's SYNCED arrived: every advert it held when we joined is merged."""
        self.closed = False

    def start(self) -> list[Action]:
        """What to send when the channel opens: our proof of membership."""
        return [Send(encode_auth(self._keys.channel_mac(self._handshake_hash, self._is_initiator)))]

    def receive(self, data: Buffer) -> list[Action]:
        """One message from the peer."""
        if self.closed:
            return []
        try:
            message = decode_group_message(data)
            if not self.authenticated:
                if not isinstance(message, GroupAuth):
                    raise DecodeError("the first group message must be AUTH")
                return self._on_auth(message.mac)
            if isinstance(message, GroupSynced) and not self.peer_synced:
                self.peer_synced = True
                return [PeerSynced()]
            if isinstance(message, GroupEntry):
                accepted = self.log.add(message.entry)
                return [EntriesAccepted(tuple(accepted))] if accepted else []
            if not isinstance(message, GroupAdvert):
                raise DecodeError(f"unexpected group message {type(message).__name__}")
            return self._on_advert(message.advert)
        except HyphalError as exc:
            return self._close(f"{type(exc).__name__}: {exc}")

    def share(self, advert: SignedValue) -> list[Action]:
        """Our view changed (our own advert, or another peer's): tell this peer once it is in."""
        if not self.authenticated or self.closed:
            return []
        return [Send(encode_advert(advert))]

    def share_entry(self, entry: Entry) -> list[Action]:
        """A membership entry new here: tell this peer once it is in."""
        if not self.authenticated or self.closed:
            return []
        return [Send(encode_entry(entry))]

    def _on_auth(self, mac: bytes) -> list[Action]:
        if not self._keys.check_channel_mac(self._handshake_hash, not self._is_initiator, mac):
            return self._close("not a member: wrong group capability")
        self.authenticated = True
        sends = [Send(bytes((GroupMessage.ENTRY,)) + entry) for entry in self.log.encoded()]
        sends += [Send(encode_advert(advert)) for advert in self.membership.adverts()]
        return [*sends, Send(encode_synced())]

    def _on_advert(self, advert: SignedValue) -> list[Action]:
        held = self.membership.get(advert.public_key)
        if held is not None and advert.seq <= held.seq:
            # Stale or a repeat: nothing to pass on, so adverts never loop between sessions.
            # (It is still verified: a peer that sends forgeries is dropped either way.)
            self.membership.merge(advert)
            return []
        return [AdvertAccepted(advert, self.membership.merge(advert))]

    def _close(self, reason: str) -> list[Action]:
        self.closed = True
        return [Close(reason)]


__all__ = [
    "PROTOCOL",
    "Action",
    "AdvertAccepted",
    "Close",
    "EntriesAccepted",
    "GroupSession",
    "PeerSynced",
    "Send",
]
