"""The ephemeral message channel's state machine (sans-I/O): checks, dedupe window, rate limits.

:class:`MessageInbox` decides what to do with every envelope a peer hands
over (docs/PROTOCOL.md §16.2), in this order, each step before anything is
kept:

1. size, then format and the sender's signature (:func:`decode_envelope`);
2. time: not sent more than ``max_skew_ms`` in the future, not expired
   (``now > sent_ms + ttl_ms``);
3. the seen-id window: a ``(sender, id)`` seen before is a
   :class:`Duplicate` (delivered once, whether it came directly or through
   a relay, and refused as a replay once it has expired);
4. the sender's rate limit (a token bucket per device key);
5. with the group's message key, the ciphertext must open.

Only then is ``(sender, id)`` added to the window, and the result says what
to persist. Every refusal is a typed error and leaves the state as it was.
Time is passed in (``now_ms``): the same machine runs in the simulator.
"""

from __future__ import annotations

from dataclasses import dataclass

from hyphal.errors import InvalidInput, RateLimited, Unauthorized
from hyphal.groups.channel_format import (
    MAX_TTL_MS,
    Envelope,
    Message,
    decode_envelope,
    open_envelope,
    seal_message,
)
from hyphal.signing import KeyPair

SeenKey = tuple[bytes, bytes]
"""``(sender device key, message id)``."""


@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """The channel's limits; the defaults are what every node uses unless told otherwise."""

    rate: float = 5.0
    """Messages per second a device may send on average (its bucket refills at this rate)."""
    burst: int = 30
    """Messages a device may send at once."""
    max_skew_ms: int = 60_000
    """How far in the future a message's ``sent_ms`` may be (clocks differ)."""
    max_seen: int = 100_000
    """Ids the window holds at most; when full, new messages are refused, never an id forgotten early."""
    max_senders: int = 10_000
    """Rate-limit buckets held at most (full, idle ones are dropped first)."""

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1 or self.max_seen < 1 or self.max_senders < 1:
            raise InvalidInput("channel limits must be positive")

    def relaxed(self) -> ChannelLimits:
        """A receiver's bucket: twice the sender's, so jitter on the path never refuses an honest
        sender that kept to its own limit."""
        return ChannelLimits(self.rate * 2, self.burst * 2, self.max_skew_ms, self.max_seen, self.max_senders)


class SeenWindow:
    """``(sender, id)`` of every message accepted, each until it expires.

    An entry leaves only once its message has expired, so a replay is
    either a duplicate (within the TTL) or expired (after it): never new.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self._expires: dict[SeenKey, int] = {}
        self._max = max_entries

    def __len__(self) -> int:
        return len(self._expires)

    def __contains__(self, key: SeenKey) -> bool:
        return key in self._expires

    def add(self, key: SeenKey, expires_ms: int, now_ms: int) -> None:
        """Hold ``key`` until ``expires_ms``; :class:`RateLimited` if the window is full."""
        if key in self._expires:
            return
        if len(self._expires) >= self._max:
            self.expire(now_ms)
            if len(self._expires) >= self._max:
                raise RateLimited(f"the seen-message window is full ({self._max} ids); try again later")
        self._expires[key] = expires_ms

    def expire(self, now_ms: int) -> None:
        """Forget every id whose message has expired."""
        gone = [key for key, expires in self._expires.items() if expires < now_ms]
        for key in gone:
            del self._expires[key]

    def entries(self) -> list[tuple[bytes, bytes, int]]:
        """``(sender, id, expires_ms)`` of every id held: what a restart loads again."""
        return [(sender, id_, expires) for (sender, id_), expires in self._expires.items()]


class RateLimiter:
    """A token bucket per device key: ``burst`` messages at once, ``rate`` a second after that."""

    def __init__(self, limits: ChannelLimits) -> None:
        self._limits = limits
        self._buckets: dict[bytes, tuple[float, int]] = {}
        """Per sender: (tokens, when they were counted)."""

    def _tokens(self, sender: bytes, now_ms: int) -> float:
        tokens, at = self._buckets.get(sender, (float(self._limits.burst), now_ms))
        elapsed = max(0, now_ms - at) / 1000
        return min(float(self._limits.burst), tokens + elapsed * self._limits.rate)

    def allows(self, sender: bytes, now_ms: int) -> bool:
        return self._tokens(sender, now_ms) >= 1

    def take(self, sender: bytes, now_ms: int) -> None:
        """Spend one token of ``sender``'s; :class:`RateLimited` if it has none."""
        tokens = self._tokens(sender, now_ms)
        if tokens < 1:
            wait = (1 - tokens) / self._limits.rate
            raise RateLimited(
                f"device {sender.hex()[:16]} sends more than {self._limits.rate:g} messages a second "
                f"(burst {self._limits.burst}); try again in {wait:.1f} s"
            )
        if sender not in self._buckets and len(self._buckets) >= self._limits.max_senders:
            self._forget_full(now_ms)
        self._buckets[sender] = (tokens - 1, now_ms)

    def _forget_full(self, now_ms: int) -> None:
        # A full bucket is the state of a sender never seen: forgetting it changes nothing.
        full = [s for s in self._buckets if self._tokens(s, now_ms) >= self._limits.burst]
        for sender in full:
            del self._buckets[sender]


@dataclass(frozen=True, slots=True)
class Accepted:
    """A message new here. ``message`` is ``None`` on a node without the key (a relay)."""

    envelope: Envelope
    message: Message | None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A message already accepted here (it came twice: directly and through a relay, say)."""

    envelope: Envelope


class MessageInbox:
    """Every message a node accepts or sends, for all its groups (ids are random and signed,
    so one window serves every channel). Feed it :meth:`receive` and :meth:`send`."""

    def __init__(self, limits: ChannelLimits | None = None) -> None:
        self.limits = limits or ChannelLimits()
        self.seen = SeenWindow(self.limits.max_seen)
        self._received = RateLimiter(self.limits.relaxed())
        self._sent = RateLimiter(self.limits)

    def load(self, entries: list[tuple[bytes, bytes, int]], now_ms: int) -> None:
        """The persisted window of a previous run: every id not expired is held again."""
        for sender, id_, expires in entries:
            if expires >= now_ms:
                self.seen.add((sender, id_), expires, now_ms)

    def receive(self, channel_id: bytes, data: bytes, key: bytes | None, now_ms: int) -> Accepted | Duplicate:
        """Check one envelope from a peer; raises a typed error if it is refused (see the module doc).

        ``key``: the group's message key, or ``None`` on a node that only forwards.
        """
        envelope = decode_envelope(data, channel_id)
        if envelope.sent_ms > now_ms + self.limits.max_skew_ms:
            raise InvalidInput(
                f"message {envelope.id.hex()} is sent {envelope.sent_ms - now_ms} ms in the future "
                f"(more than {self.limits.max_skew_ms} ms): the sender's clock is wrong"
            )
        seen_key = (envelope.sender, envelope.id)
        if envelope.expires_ms < now_ms:
            if seen_key in self.seen:
                return Duplicate(envelope)
            raise Unauthorized(
                f"message {envelope.id.hex()} expired {now_ms - envelope.expires_ms} ms ago: "
                "a replay, or delayed past its TTL"
            )
        if seen_key in self.seen:
            return Duplicate(envelope)
        self._received.take(envelope.sender, now_ms)
        message = None if key is None else open_envelope(envelope, key, channel_id)
        self.seen.add(seen_key, envelope.expires_ms, now_ms)
        return Accepted(envelope, message)

    def send(
        self,
        keypair: KeyPair,
        key: bytes,
        channel_id: bytes,
        *,
        id: bytes,  # noqa: A002
        nonce: bytes,
        now_ms: int,
        ttl_ms: int,
        topic: str,
        body: bytes,
    ) -> Envelope:
        """A new message from this device: sealed, signed, and held in the window (so an echo
        through a relay is a duplicate). :class:`RateLimited` over this device's own limit."""
        if not 0 < ttl_ms <= MAX_TTL_MS:
            raise InvalidInput(f"a message TTL is 1 ms to {MAX_TTL_MS // 1000} s")
        if not self._sent.allows(keypair.public_key, now_ms):
            self._sent.take(keypair.public_key, now_ms)  # raises, with how long to wait
        raw = seal_message(
            keypair,
            key,
            channel_id,
            id=id,
            nonce=nonce,
            sent_ms=now_ms,
            ttl_ms=ttl_ms,
            topic=topic,
            body=body,
        )
        envelope = decode_envelope(raw, channel_id)
        self.seen.add((envelope.sender, envelope.id), envelope.expires_ms, now_ms)
        self._sent.take(keypair.public_key, now_ms)
        return envelope


__all__ = [
    "Accepted",
    "ChannelLimits",
    "Duplicate",
    "MessageInbox",
    "RateLimiter",
    "SeenKey",
    "SeenWindow",
]
