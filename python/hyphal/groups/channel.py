"""The ephemeral message channel on a running node: a :class:`MessageHub`, a :class:`GroupChannel` per group.

Messages between the devices of a group, never stored in a feed
(docs/PROTOCOL.md §16). Each group runs the channel ``hyphal/msg/1`` (id:
its discovery key) on every connection whose peer proved membership on the
group channel (§14.5), members and backup servers alike:

- a member device sends a new message on every such connection at once:
  directly to the members it is connected to, and to the always-on nodes
  (backup servers) it is connected to;
- a backup server holds a grant, not the secret, so it cannot open a
  message: it checks the signature, the time, the seen-id window and the
  sender's rate limit, then forwards the envelope unchanged to every other
  peer of the group (never back to where it came from or to its sender);
- every node keeps what it sent or forwarded, unexpired, in memory (at most
  :data:`HOLD_MESSAGES` per group), and hands it to peers that attach later
  within the TTL: store-and-forward, never written to disk;
- a message that comes twice (directly and through a relay) is delivered
  once; the window of seen ids is persisted (:mod:`.channel_seen`), so a
  replay after a restart is refused too.

The decisions are :class:`~hyphal.groups.channel_core.MessageInbox`'s; this
module does the I/O. Bad input from a peer (oversized, malformed, unsigned,
forged, expired, replayed, over the rate limit) is refused with a typed
error and a log line, counted, and changes nothing; the channel stays open.
"""

from __future__ import annotations

import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hyphal.clock import wall_time
from hyphal.errors import HyphalError, InvalidInput
from hyphal.groups.channel_core import Accepted, ChannelLimits, Duplicate, MessageInbox
from hyphal.groups.channel_format import (
    DEFAULT_TTL_MS,
    ID_SIZE,
    MAX_TTL_MS,
    PROTOCOL,
    Envelope,
    message_key,
)
from hyphal.groups.channel_seen import SeenLog
from hyphal.groups.events import MessageReceived
from hyphal.groups.keys import GroupKeys
from hyphal.net.connection import Connection
from hyphal.replication.fanout import Fanout, Subscriber
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.groups.channel")
traffic = logging.getLogger("hyphal.groups.channel.traffic")
"""At DEBUG, one line per envelope a node forwards, with its bytes in hex: a capture of what a
relay handled (it holds only ciphertext)."""

SEEN_FILE = "messages-seen"
HOLD_MESSAGES = 256
"""Messages a group's channel keeps for peers that attach later, at most (the oldest go first)."""
REFUSALS_KEPT = 64
NONCE_SIZE = 24


def now_ms() -> int:
    return int(wall_time() * 1000)


class MessageHub:
    """The node's one inbox (seen-id window and rate limits, for every group) and its file."""

    def __init__(self, path: Path | None, limits: ChannelLimits | None = None) -> None:
        self.inbox = MessageInbox(limits)
        self._log = SeenLog(path) if path is not None else None

    def open(self) -> None:
        """Load the window a previous run persisted."""
        if self._log is not None:
            now = now_ms()
            self.inbox.load(self._log.load(now), now)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()

    def receive(self, channel_id: bytes, data: bytes, key: bytes | None) -> Accepted | Duplicate:
        result = self.inbox.receive(channel_id, data, key, now_ms())
        if isinstance(result, Accepted):
            self._persist(result.envelope)
        return result

    def send(
        self, keypair: KeyPair, key: bytes, channel_id: bytes, topic: str, body: bytes, ttl_ms: int
    ) -> Envelope:
        envelope = self.inbox.send(
            keypair,
            key,
            channel_id,
            id=secrets.token_bytes(ID_SIZE),
            nonce=secrets.token_bytes(NONCE_SIZE),
            now_ms=now_ms(),
            ttl_ms=ttl_ms,
            topic=topic,
            body=body,
        )
        self._persist(envelope)
        return envelope

    def _persist(self, envelope: Envelope) -> None:
        if self._log is None:
            return
        seen = self.inbox.seen
        if self._log.append(envelope.sender, envelope.id, envelope.expires_ms, len(seen)):
            seen.expire(now_ms())
            self._log.rewrite(seen.entries())


@dataclass(slots=True)
class ChannelStats:
    """What one group's channel has done since the node started."""

    sent: int = 0
    delivered: int = 0
    duplicates: int = 0
    forwarded: int = 0
    """Envelopes handed on to a peer (a relay's forwards, and held ones sent on attach)."""
    refused: dict[str, int] = field(default_factory=dict)
    """Refused envelopes, by error type."""


@dataclass(frozen=True, slots=True)
class SentMessage:
    id: bytes
    sent_ms: int
    expires_ms: int
    peers: int
    """Peers it went to at once (0: it waits, held, for peers that connect within its TTL)."""


class GroupChannel(Fanout):
    """The message channel of one group on every attached connection (see the module doc)."""

    def __init__(
        self,
        hub: MessageHub,
        keys: GroupKeys,
        keypair: KeyPair,
        deliver: Callable[[MessageReceived], None],
        name_of: Callable[[bytes], str],
    ) -> None:
        super().__init__(PROTOCOL, keys.discovery_key)
        self._hub = hub
        self._keypair = keypair
        self._key = message_key(keys) if keys.is_member else None
        self._deliver = deliver
        self._name_of = name_of
        self._held: deque[tuple[Envelope, bytes]] = deque(maxlen=HOLD_MESSAGES)
        """(envelope, the device key it came from) of what this node sent or forwarded."""
        self._attaching: set[Connection] = set()
        self.stats = ChannelStats()
        self.refusals: deque[tuple[bytes, str]] = deque(maxlen=REFUSALS_KEPT)
        """(peer device key, why) of the latest envelopes refused."""

    @property
    def is_relay(self) -> bool:
        """This node forwards without reading (it has no message key: a backup server)."""
        return self._key is None

    @property
    def held(self) -> int:
        """Unexpired messages held for peers that attach later."""
        now = now_ms()
        return sum(1 for envelope, _ in self._held if envelope.expires_ms >= now)

    async def attach_peer(self, connection: Connection) -> None:
        """Run the channel on ``connection`` (once; its peer proved membership on the group channel)."""
        if connection in self._attaching or self.attached_to(connection) or connection.closed.is_set():
            return
        self._attaching.add(connection)
        try:
            await self.attach(connection)
        finally:
            self._attaching.discard(connection)

    def send(self, body: bytes, *, topic: str = "", ttl_ms: int = DEFAULT_TTL_MS) -> SentMessage:
        """Seal, sign and send a message to every attached peer; it is held for later ones."""
        if self._key is None:
            raise InvalidInput("a backup server relays group messages but cannot send them (it has no key)")
        if not 0 < ttl_ms <= MAX_TTL_MS:
            raise InvalidInput(f"a message TTL is from 1 ms to {MAX_TTL_MS // 1000} s")
        envelope = self._hub.send(self._keypair, self._key, self.channel_id, topic, body, ttl_ms)
        self._held.append((envelope, self._keypair.public_key))
        for sub in self.subscribers:
            sub.outbox.put(envelope.raw)
        self.stats.sent += 1
        return SentMessage(envelope.id, envelope.sent_ms, envelope.expires_ms, len(self.subscribers))

    # -- the Fanout's hooks -------------------------------------------------------------------

    def _opened(self, sub: Subscriber) -> None:
        peer = sub.connection.remote_public_key
        now = now_ms()
        for envelope, source in self._held:
            if envelope.expires_ms >= now and peer not in (source, envelope.sender):
                sub.outbox.put(envelope.raw)
                self.stats.forwarded += 1

    def _on_message(self, sub: Subscriber, data: bytes) -> None:
        peer = sub.connection.remote_public_key
        try:
            result = self._hub.receive(self.channel_id, data, self._key)
        except HyphalError as exc:
            kind = type(exc).__name__
            self.stats.refused[kind] = self.stats.refused.get(kind, 0) + 1
            self.refusals.append((peer, f"{kind}: {exc}"))
            log.warning("refused a group message from %s: %s: %s", sub.connection, kind, exc)
            return
        if not isinstance(result, Accepted):
            self.stats.duplicates += 1
            return
        envelope = result.envelope
        if self.is_relay:
            self._forward(envelope, sub)
        if result.message is not None:
            message = result.message
            self.stats.delivered += 1
            self._deliver(
                MessageReceived(
                    message.id,
                    message.sender,
                    self._name_of(message.sender),
                    message.topic,
                    message.body,
                    message.sent_ms,
                    peer,
                )
            )

    def _forward(self, envelope: Envelope, source: Subscriber) -> None:
        came_from = source.connection.remote_public_key
        self._held.append((envelope, came_from))
        targets = [
            sub
            for sub in self.subscribers
            if sub is not source and sub.connection.remote_public_key != envelope.sender
        ]
        for sub in targets:
            sub.outbox.put(envelope.raw)
        self.stats.forwarded += len(targets)
        traffic.debug(
            "forwarded message %s from %s to %d peers: %s",
            envelope.id.hex(),
            came_from.hex()[:16],
            len(targets),
            envelope.raw.hex(),
        )


__all__ = ["HOLD_MESSAGES", "SEEN_FILE", "ChannelStats", "GroupChannel", "MessageHub", "SentMessage"]
