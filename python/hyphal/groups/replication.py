"""Keeps a group's membership view in sync over every attached connection.

Runs a :class:`~hyphal.groups.session.GroupSession` on the group channel of
each connection (docs/PROTOCOL.md §14.5): adverts that one peer brings are
passed on to the others, and :meth:`GroupReplication.publish` spreads this
device's own advert. The group's membership log (§17) spreads the same
way: :meth:`GroupReplication.publish_entry` for this device's entries.
Peers that fail the membership proof or send bad adverts or entries are
dropped.
"""

from __future__ import annotations

from hyphal.errors import InvalidInput
from hyphal.groups.keys import GroupKeys
from hyphal.groups.members import Membership
from hyphal.groups.membership import Entry, MembershipLog
from hyphal.groups.session import (
    PROTOCOL,
    Action,
    AdvertAccepted,
    Close,
    EntriesAccepted,
    GroupSession,
    PeerSynced,
    Send,
)
from hyphal.net.connection import Connection
from hyphal.notifier import Notifier
from hyphal.replication.fanout import Fanout, Subscriber
from hyphal.signed_value import SignedValue


class GroupReplication(Fanout):
    """The group channel on every attached connection, feeding one :class:`Membership`."""

    def __init__(
        self, keys: GroupKeys, membership: Membership | None = None, log: MembershipLog | None = None
    ) -> None:
        super().__init__(PROTOCOL, keys.discovery_key)
        self.keys = keys
        self.membership = membership or Membership(keys)
        self.log = log if log is not None else MembershipLog(keys.group_key)
        self.entries: Notifier[tuple[Entry, ...]] = Notifier()
        """Membership log entries new here (from a peer or this device), as they are accepted."""
        self.changes: Notifier[AdvertAccepted] = Notifier()
        """Every advert that was new here, with what it changed among current members."""
        self.synced: Notifier[Connection] = Notifier()
        """A peer has sent its whole view (see :meth:`is_synced`), or its channel is gone."""
        self._sessions: dict[Subscriber, GroupSession] = {}
        self.refused: dict[bytes, str] = {}
        """Peers (by device key) whose group channel ended, their connection still open,
        before they proved membership: they hold no group with this secret (a wrong or
        forged invite's secret, or a peer not in the group), with the channel's reason."""

    @property
    def member_peer_count(self) -> int:
        """Attached peers that proved they hold the group secret."""
        return sum(1 for session in self._sessions.values() if session.authenticated)

    def member_connections(self) -> list[Connection]:
        """Open connections whose peer proved it holds the group secret (or a backup's grant)."""
        return [
            sub.connection
            for sub, session in self._sessions.items()
            if session.authenticated and not session.closed and not sub.connection.closed.is_set()
        ]

    def is_synced(self, connection: Connection) -> bool:
        """``connection``'s peer proved membership and sent every advert it held."""
        return any(
            sub.connection is connection and session.peer_synced and not session.closed
            for sub, session in self._sessions.items()
        )

    def is_pending(self, connection: Connection) -> bool:
        """The group channel on ``connection`` is open and the peer's view not all in yet."""
        return any(
            sub.connection is connection and not session.peer_synced and not session.closed
            for sub, session in self._sessions.items()
        )

    def publish(self, advert: SignedValue) -> None:
        """Take this device's new advert (or one from elsewhere, say the DHT) and spread it."""
        held = self.membership.get(advert.public_key)
        if held is not None and advert.seq <= held.seq:
            raise InvalidInput(f"advert seq {advert.seq} is not above the held {held.seq}")
        self._accepted(AdvertAccepted(advert, self.membership.merge(advert)), None)

    def publish_entry(self, entry: Entry) -> None:
        """This device's new membership entry (already added to :attr:`log`): spread it."""
        self._entries_accepted((entry,), None)

    def _entries_accepted(self, entries: tuple[Entry, ...], source: Subscriber | None) -> None:
        for sub, session in list(self._sessions.items()):
            if sub is not source:
                for entry in entries:
                    for action in session.share_entry(entry):
                        assert isinstance(action, Send)
                        sub.outbox.put(action.data)
        self.entries.notify(entries)

    def _opened(self, sub: Subscriber) -> None:
        connection = sub.connection
        session = GroupSession(
            self.keys, self.membership, connection.handshake_hash, connection.is_initiator, self.log
        )
        self._sessions[sub] = session
        self._perform(sub, session.start())

    def _on_message(self, sub: Subscriber, data: bytes) -> None:
        self._perform(sub, self._sessions[sub].receive(data))

    def _forgotten(self, sub: Subscriber) -> None:
        session = self._sessions.pop(sub, None)
        connection = sub.connection
        if session is not None and not session.authenticated and not connection.closed.is_set():
            reason = sub.channel.close_reason or "no reason given"
            self.refused[connection.remote_public_key] = reason
        self.synced.notify(connection)

    def _perform(self, sub: Subscriber, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, Send):
                sub.outbox.put(action.data)
            elif isinstance(action, AdvertAccepted):
                self._accepted(action, sub)
            elif isinstance(action, EntriesAccepted):
                self._entries_accepted(action.entries, sub)
            elif isinstance(action, PeerSynced):
                self.refused.pop(sub.connection.remote_public_key, None)
                self.synced.notify(sub.connection)
            elif isinstance(action, Close):
                self._drop(sub, action.reason)

    def _accepted(self, accepted: AdvertAccepted, source: Subscriber | None) -> None:
        for sub, session in list(self._sessions.items()):
            if sub is not source:
                for action in session.share(accepted.advert):
                    assert isinstance(action, Send)
                    sub.outbox.put(action.data)
        self.changes.notify(accepted)


__all__ = ["GroupReplication"]
