"""Channels multiplexed over one connection, sans-I/O.

A channel is named by ``(protocol, id)``. Both sides open the same pair to
use it, as in hypercore's protomux; an OPEN from the peer for a pair not
opened here becomes a :class:`ChannelRequest` the application accepts (by
opening the same pair) or rejects.

Each side numbers its own channels 1, 2, 3, … and never reuses a number;
every message names the channel by the *sender's* number (REJECT, which
answers an OPEN, names the receiver's). So a message for a number already
closed is simply dropped, and no close handshake is needed.

Flow control is by credit: a side grants, per channel, a receive window in
bytes; a DATA message costs ``len(payload) + MESSAGE_OVERHEAD`` and may only
be sent with enough credit; reading a message returns its cost to the sender
in CREDIT messages. A slow reader therefore stalls only its own channel, and
the receiver never holds more than the window per channel.

Outgoing messages are packed into frame plaintexts of up to ``batch_size``
bytes (64 KiB by default), so many small messages share one frame (one seal,
one length prefix); a larger message travels alone in a frame of up to
``max_frame`` bytes.
Every byte is specified in docs/PROTOCOL.md §8.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass

from typing_extensions import Buffer

from hyphal.buffers import Parts, frozen, total_size
from hyphal.errors import DecodeError, InvalidInput, ProtocolError
from hyphal.net.frames import DEFAULT_MAX_FRAME, MAX_VARINT_LEN, check_max_frame, decode_varint, encode_varint
from hyphal.net.mux_events import (
    ChannelClosed,
    ChannelOpened,
    ChannelRequested,
    ChannelRequestWithdrawn,
    ChannelState,
    Event,
    GoodbyeReceived,
    PongReceived,
    Readable,
    Writable,
)


class MessageType(enum.IntEnum):
    OPEN = 1
    DATA = 2
    CREDIT = 3
    CLOSE = 4
    REJECT = 5
    PING = 6
    PONG = 7
    GOODBYE = 8


MAX_PROTOCOL_LEN = 255
"""Limit on a protocol name, in UTF-8 bytes."""
MAX_ID_LEN = 64
MAX_REASON_LEN = 1024
"""Limit on a close or reject reason, in UTF-8 bytes; longer ones are cut."""
MESSAGE_OVERHEAD = 32
"""Credit charged per DATA message on top of its payload, so empty messages cannot flood a reader."""
_MIN_VIEW_PAYLOAD = 4096  # smaller messages are copied out of their frame
DEFAULT_WINDOW = 8 * 1024 * 1024
MIN_WINDOW = 1024
MAX_CREDIT = 2**62
"""No channel may hold more credit than this; a peer granting more breaks the protocol."""
DEFAULT_MAX_PENDING = 128
"""Incoming channel requests held unanswered at once; further ones are rejected."""
DATA_HEADER_MAX = 1 + 2 * MAX_VARINT_LEN
DEFAULT_BATCH_SIZE = 64 * 1024
"""Small messages are packed into frames of up to this size. Larger frames would
amortise little more, and buffers of this size are recycled by the allocator while
multi-megabyte ones cost page faults on every frame (measured: 3x slower sealing)."""

_DATA = bytes((MessageType.DATA,))
_CREDIT = bytes((MessageType.CREDIT,))
_CLOSE = bytes((MessageType.CLOSE,))
_REJECT = bytes((MessageType.REJECT,))


# -- state -----------------------------------------------------------------------


class _Channel:
    __slots__ = (
        "inbox",
        "key",
        "local",
        "reason",
        "receive_credit",
        "remote",
        "remote_window",
        "send_credit",
        "state",
        "unreturned",
    )

    def __init__(self, local: int, key: tuple[str, bytes], window: int) -> None:
        self.local = local
        self.key = key
        self.remote: int | None = None
        self.state = ChannelState.OPENING
        self.send_credit = 0
        self.remote_window = 0
        self.receive_credit = window  # what the peer may still send
        self.unreturned = 0  # read here, not yet granted back
        self.inbox: deque[bytes | memoryview] = deque()
        self.reason: str | None = None


@dataclass(slots=True)
class _Request:
    remote: int
    key: tuple[str, bytes]
    window: int


def _encode_text(text: str, limit: int) -> bytes:
    raw = text.encode("utf-8")
    if len(raw) > limit:
        # Cut on a character boundary so the receiver can decode it.
        raw = raw[:limit].decode("utf-8", "ignore").encode("utf-8")
    return encode_varint(len(raw)) + raw


def _check_key(protocol: str, channel_id: bytes) -> tuple[str, bytes]:
    if not isinstance(protocol, str) or not isinstance(channel_id, bytes):
        raise InvalidInput("a channel is named by (protocol: str, id: bytes)")
    if not protocol or len(protocol.encode("utf-8")) > MAX_PROTOCOL_LEN:
        raise InvalidInput(f"a protocol name is 1 to {MAX_PROTOCOL_LEN} UTF-8 bytes")
    if len(channel_id) > MAX_ID_LEN:
        raise InvalidInput(f"a channel id is at most {MAX_ID_LEN} bytes")
    return protocol, channel_id


class Mux:
    """The channel state of one connection.

    Local actions (:meth:`open`, :meth:`send`, :meth:`read`, :meth:`close`, …)
    queue messages; :meth:`take_frames` hands them out packed into frame
    plaintexts. :meth:`receive` parses one opened frame and returns what
    happened as events. Peer misbehaviour raises :class:`ProtocolError` or
    :class:`DecodeError`; after that the connection must be closed.
    """

    def __init__(
        self,
        *,
        max_frame: int = DEFAULT_MAX_FRAME,
        window: int = DEFAULT_WINDOW,
        max_pending: int = DEFAULT_MAX_PENDING,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        """``max_frame``: the largest frame plaintext the peer accepts.

        ``window``: the credit this side grants per channel.
        ``batch_size``: messages are packed together into frames of up to this
        many bytes; a larger message travels alone in a frame of up to ``max_frame``.
        """
        self.max_frame = check_max_frame(max_frame)
        if batch_size < 1:
            raise InvalidInput("batch_size must be positive")
        self.batch_size = min(batch_size, self.max_frame)
        if not MIN_WINDOW <= window <= MAX_CREDIT:
            raise InvalidInput(f"a channel window is at least {MIN_WINDOW} bytes")
        self.window = window
        self.max_pending = max_pending
        # Credit is returned once a quarter of the window has been read: few CREDIT
        # messages, the writer never runs dry, and it is under the half-window bound
        # that check_sendable relies on.
        self._credit_threshold = max(1, window // 4)
        self.max_message_size = self.max_frame - DATA_HEADER_MAX
        self._next_local = 1
        self._max_remote = 0
        self._channels: dict[int, _Channel] = {}
        self._by_remote: dict[int, _Channel | _Request] = {}
        self._by_key: dict[tuple[str, bytes], _Channel] = {}
        self._requests: dict[tuple[str, bytes], _Request] = {}
        # Channels closed here before the peer answered their OPEN. The peer answers every
        # OPEN exactly once (OPEN or REJECT), in order; that answer must not be taken for
        # a new request, or both sides would end up holding different pairs.
        self._unanswered: dict[int, tuple[str, bytes]] = {}
        self._absorb: dict[tuple[str, bytes], deque[int]] = {}
        self._frames: deque[tuple[list[Buffer], int]] = deque()
        self._current: list[Buffer] = []
        self._current_size = 0
        self.outgoing_bytes = 0

    # -- queries ---------------------------------------------------------------

    def state(self, channel: int) -> ChannelState | None:
        """The channel's state, or ``None`` once closed here (or never opened)."""
        found = self._channels.get(channel)
        return None if found is None else found.state

    def close_reason(self, channel: int) -> str | None:
        found = self._channels.get(channel)
        return None if found is None else found.reason

    def send_credit(self, channel: int) -> int:
        found = self._channels.get(channel)
        return 0 if found is None or found.state is not ChannelState.OPEN else found.send_credit

    def can_send(self, channel: int, size: int) -> bool:
        return self.send_credit(channel) >= size + MESSAGE_OVERHEAD

    def max_message_for(self, channel: int) -> int:
        """The largest message ``channel`` can carry: it must fit in a frame, and
        cost at most half the window the peer granted (see :meth:`check_sendable`)."""
        found = self._channels.get(channel)
        if found is None or found.state is not ChannelState.OPEN:
            return self.max_message_size
        return min(self.max_message_size, found.remote_window // 2 - MESSAGE_OVERHEAD)

    def check_sendable(self, channel: int, size: int) -> None:
        """Raise :class:`InvalidInput` if a message of ``size`` bytes may never be sent on ``channel``.

        A message may cost at most half the peer's window. The peer returns
        credit by the time half its window is read, so once it has read
        everything this side holds more than half the window: the next message
        can always go. A costlier one could wait forever.
        """
        limit = self.max_message_for(channel)
        if size > limit:
            raise InvalidInput(f"message of {size} bytes exceeds the channel's limit of {limit}")

    def pending(self, channel: int) -> int:
        """Messages received on ``channel`` and not yet read."""
        found = self._channels.get(channel)
        return 0 if found is None else len(found.inbox)

    def is_requested(self, protocol: str, channel_id: bytes) -> bool:
        """The peer's OPEN of the pair waits for an answer here."""
        return (protocol, channel_id) in self._requests

    def requests(self) -> list[tuple[str, bytes]]:
        """Incoming channel requests not yet answered."""
        return list(self._requests)

    def has_request(self, protocol: str, channel_id: bytes) -> bool:
        return (protocol, channel_id) in self._requests

    @property
    def has_output(self) -> bool:
        return self.outgoing_bytes > 0

    # -- local actions -----------------------------------------------------------

    def open(self, protocol: str, channel_id: bytes) -> int:
        """Open ``(protocol, channel_id)``; returns the local channel number.

        If the peer already asked for this pair the channel is open at once.
        """
        key = _check_key(protocol, channel_id)
        if key in self._by_key:
            raise InvalidInput(f"channel {protocol!r}/{channel_id.hex()} is already open")
        local = self._next_local
        self._next_local += 1
        channel = _Channel(local, key, self.window)
        self._channels[local] = channel
        self._by_key[key] = channel
        raw_protocol = protocol.encode("utf-8")
        self._queue(
            b"".join(
                (
                    bytes((MessageType.OPEN,)),
                    encode_varint(local),
                    encode_varint(self.window),
                    encode_varint(len(raw_protocol)),
                    raw_protocol,
                    encode_varint(len(channel_id)),
                    channel_id,
                )
            )
        )
        request = self._requests.pop(key, None)
        if request is not None:
            self._pair(channel, request.remote, request.window)
        return local

    def reject(self, protocol: str, channel_id: bytes, reason: str = "") -> None:
        """Turn down the peer's request for ``(protocol, channel_id)``."""
        request = self._requests.pop(_check_key(protocol, channel_id), None)
        if request is None:
            raise InvalidInput(f"no pending request for {protocol!r}/{channel_id.hex()}")
        del self._by_remote[request.remote]
        self._send_reject(request.remote, reason)

    def close(self, channel: int, reason: str = "") -> None:
        """Close ``channel`` here; unread messages are dropped. Closing twice is harmless."""
        found = self._channels.pop(channel, None)
        if found is None:
            return
        found.inbox.clear()
        if found.state is ChannelState.REMOTE_CLOSED:
            return  # the peer already forgot it
        if found.remote is None:
            self._unanswered[channel] = found.key
            self._absorb.setdefault(found.key, deque()).append(channel)
        if self._by_key.get(found.key) is found:
            del self._by_key[found.key]
        if found.remote is not None:
            self._by_remote.pop(found.remote, None)
        self._queue(_CLOSE + encode_varint(channel) + _encode_text(reason, MAX_REASON_LEN))

    def send(self, channel: int, payload: Buffer | Parts) -> None:
        """Queue one message; needs ``size + MESSAGE_OVERHEAD`` credit (see :meth:`can_send`).

        ``payload`` may be a list or tuple of buffers, the message in pieces:
        they are queued as they are and only joined when the frame is sealed.
        """
        found = self._channels.get(channel)
        if found is None or found.state is not ChannelState.OPEN:
            raise InvalidInput(f"channel {channel} is not open")
        # The caller may reuse a mutable buffer once we return: keep only immutable ones.
        parts = [frozen(p) for p in payload] if isinstance(payload, (list, tuple)) else [frozen(payload)]
        size = total_size(parts)
        self.check_sendable(channel, size)
        cost = size + MESSAGE_OVERHEAD
        if cost > found.send_credit:
            raise InvalidInput(f"channel {channel} has {found.send_credit} credit, the message needs {cost}")
        found.send_credit -= cost
        header = _DATA + encode_varint(channel) + encode_varint(size)
        self._queue_parts([header, *parts], len(header) + size)

    def read(self, channel: int) -> bytes | memoryview | None:
        """The next message received on ``channel``, or ``None``; returns its credit to the peer.

        A large message may be a read-only view of the frame it came in, not a copy.
        """
        found = self._channels.get(channel)
        if found is None or not found.inbox:
            return None
        data = found.inbox.popleft()
        if found.state is ChannelState.OPEN:
            found.unreturned += len(data) + MESSAGE_OVERHEAD
            if found.unreturned >= self._credit_threshold:
                grant = found.unreturned
                found.unreturned = 0
                found.receive_credit += grant
                self._queue(_CREDIT + encode_varint(channel) + encode_varint(grant))
        return data

    def ping(self, nonce: int) -> None:
        self._queue(bytes((MessageType.PING,)) + encode_varint(nonce))

    def goodbye(self, reason: str = "") -> None:
        """Tell the peer the connection is closing, and why."""
        self._queue(bytes((MessageType.GOODBYE,)) + _encode_text(reason, MAX_REASON_LEN))

    # -- output ------------------------------------------------------------------

    def _queue(self, message: bytes) -> None:
        self._queue_parts([message], len(message))

    def _queue_parts(self, parts: list[Buffer], size: int) -> None:
        if self._current and self._current_size + size > self.batch_size:
            self._frames.append((self._current, self._current_size))
            self._current = []
            self._current_size = 0
        self._current.extend(parts)
        self._current_size += size
        self.outgoing_bytes += size

    def take_frame_parts(self, limit: int | None = None) -> list[list[Buffer]]:
        """Frame plaintexts for what is queued, in order, each as the pieces it is made of:
        at least one frame, and no more once ``limit`` bytes are taken."""
        if self._current:
            self._frames.append((self._current, self._current_size))
            self._current = []
            self._current_size = 0
        out: list[list[Buffer]] = []
        taken = 0
        while self._frames and (limit is None or taken < limit):
            parts, size = self._frames.popleft()
            out.append(parts)
            taken += size
        self.outgoing_bytes -= taken
        return out

    def take_frames(self, limit: int | None = None) -> list[bytes]:
        """:meth:`take_frame_parts`, each frame joined into one ``bytes``."""
        return [b"".join(parts) for parts in self.take_frame_parts(limit)]

    # -- input -------------------------------------------------------------------

    def receive(self, plaintext: Buffer) -> list[Event]:
        """Apply one frame's messages; returns the resulting events in order."""
        view = memoryview(plaintext)
        end = len(view)
        if end == 0:
            raise DecodeError("empty frame")
        events: list[Event] = []
        readable: set[int] = set()
        pos = 0
        while pos < end:
            kind = view[pos]
            pos += 1
            if kind == MessageType.DATA:
                number, pos = decode_varint(view, pos)
                size, pos = decode_varint(view, pos)
                if size > end - pos:
                    raise DecodeError("truncated DATA message")
                self._on_data(number, view[pos : pos + size], readable, events)
                pos += size
            elif kind == MessageType.CREDIT:
                number, pos = decode_varint(view, pos)
                grant, pos = decode_varint(view, pos)
                self._on_credit(number, grant, events)
            elif kind == MessageType.OPEN:
                number, pos = decode_varint(view, pos)
                window, pos = decode_varint(view, pos)
                protocol, pos = _decode_text(view, pos, MAX_PROTOCOL_LEN)
                channel_id, pos = _decode_bytes(view, pos, MAX_ID_LEN)
                self._on_open(number, window, protocol, channel_id, events)
            elif kind == MessageType.CLOSE:
                number, pos = decode_varint(view, pos)
                reason, pos = _decode_text(view, pos, MAX_REASON_LEN)
                self._on_close(number, reason, events)
            elif kind == MessageType.REJECT:
                number, pos = decode_varint(view, pos)
                reason, pos = _decode_text(view, pos, MAX_REASON_LEN)
                self._on_reject(number, reason, events)
            elif kind == MessageType.PING:
                nonce, pos = decode_varint(view, pos)
                self._queue(bytes((MessageType.PONG,)) + encode_varint(nonce))
            elif kind == MessageType.PONG:
                nonce, pos = decode_varint(view, pos)
                events.append(PongReceived(nonce))
            elif kind == MessageType.GOODBYE:
                reason, pos = _decode_text(view, pos, MAX_REASON_LEN)
                events.append(GoodbyeReceived(reason))
            else:
                raise ProtocolError(f"unknown message type {kind}")
        return events

    def _lookup(self, number: int, what: str) -> _Channel | _Request | None:
        """The peer's channel ``number``; ``None`` if it was closed (its messages are dropped)."""
        found = self._by_remote.get(number)
        if found is None and number > self._max_remote:
            raise ProtocolError(f"{what} for channel {number}, which the peer never opened")
        return found

    def _on_data(self, number: int, payload: memoryview, readable: set[int], events: list[Event]) -> None:
        found = self._lookup(number, "DATA")
        if found is None:
            return
        if isinstance(found, _Request):
            raise ProtocolError(f"DATA on channel {number} before it was accepted")
        cost = len(payload) + MESSAGE_OVERHEAD
        if cost > found.receive_credit:
            raise ProtocolError(f"DATA on channel {number} exceeds the granted window")
        found.receive_credit -= cost
        # A large payload that is most of an immutable frame is kept as a view of it, not
        # copied; a small one is copied, so it cannot pin a large frame in memory, and a
        # flood of tiny messages costs bytes objects, not view objects, per message.
        frame = payload.obj
        size = len(payload)
        keep_view = size >= _MIN_VIEW_PAYLOAD and type(frame) is bytes and 2 * size >= len(frame)
        found.inbox.append(payload if keep_view else bytes(payload))
        if found.local not in readable:
            readable.add(found.local)
            events.append(Readable(found.local))

    def _on_credit(self, number: int, grant: int, events: list[Event]) -> None:
        found = self._lookup(number, "CREDIT")
        if found is None:
            return
        if isinstance(found, _Request):
            raise ProtocolError(f"CREDIT on channel {number} before it was accepted")
        found.send_credit += grant
        if found.send_credit > MAX_CREDIT:
            raise ProtocolError(f"credit on channel {number} exceeds 2^62")
        events.append(Writable(found.local))

    def _on_open(
        self, number: int, window: int, protocol: str, channel_id: bytes, events: list[Event]
    ) -> None:
        if number <= self._max_remote:
            raise ProtocolError(f"OPEN reuses channel number {number}")
        if not protocol:
            raise DecodeError("empty protocol name")
        if not MIN_WINDOW <= window <= MAX_CREDIT:
            raise ProtocolError(f"channel window {window} outside [{MIN_WINDOW}, 2^62]")
        self._max_remote = number
        key = (protocol, channel_id)
        absorbed = self._absorb.get(key)
        if absorbed:
            # The peer's answer to an OPEN of ours that we closed before it came: our CLOSE
            # ends its side, and anything it sends on ``number`` is dropped as stale.
            self._forget_unanswered(absorbed.popleft())
            return
        if key in self._requests:
            raise ProtocolError(f"OPEN of {protocol!r}/{channel_id.hex()} twice")
        channel = self._by_key.get(key)
        if channel is not None:
            if channel.remote is not None:
                raise ProtocolError(f"OPEN of {protocol!r}/{channel_id.hex()}, which is already paired")
            self._pair(channel, number, window)
            events.append(ChannelOpened(channel.local))
            return
        if len(self._requests) >= self.max_pending:
            self._send_reject(number, "too many pending channel requests")
            return
        request = _Request(number, key, window)
        self._requests[key] = request
        self._by_remote[number] = request
        events.append(ChannelRequested(protocol, channel_id))

    def _on_close(self, number: int, reason: str, events: list[Event]) -> None:
        found = self._lookup(number, "CLOSE")
        if found is None:
            return
        del self._by_remote[number]
        if isinstance(found, _Request):
            del self._requests[found.key]
            # Still an answer: the peer waits for one to every OPEN (see _unanswered).
            self._send_reject(number, "withdrawn")
            events.append(ChannelRequestWithdrawn(*found.key))
            return
        self._end_remotely(found, reason, events)

    def _on_reject(self, number: int, reason: str, events: list[Event]) -> None:
        found = self._channels.get(number)
        if found is None:
            if number >= self._next_local:
                raise ProtocolError(f"REJECT of channel {number}, which was never opened here")
            if number in self._unanswered:
                key = self._unanswered[number]
                self._absorb[key].remove(number)
                self._forget_unanswered(number)
            return  # closed here in the meantime
        if found.state is not ChannelState.OPENING:
            raise ProtocolError(f"REJECT of channel {number}, which the peer had accepted")
        self._end_remotely(found, reason, events)

    def _end_remotely(self, channel: _Channel, reason: str, events: list[Event]) -> None:
        channel.state = ChannelState.REMOTE_CLOSED
        channel.reason = reason
        channel.send_credit = 0
        if self._by_key.get(channel.key) is channel:
            del self._by_key[channel.key]
        events.append(ChannelClosed(channel.local, reason))

    def _forget_unanswered(self, number: int) -> None:
        key = self._unanswered.pop(number)
        if not self._absorb.get(key):
            self._absorb.pop(key, None)

    def _pair(self, channel: _Channel, remote: int, window: int) -> None:
        channel.remote = remote
        channel.remote_window = window
        channel.send_credit = window
        channel.state = ChannelState.OPEN
        self._by_remote[remote] = channel

    def _send_reject(self, remote: int, reason: str) -> None:
        self._queue(_REJECT + encode_varint(remote) + _encode_text(reason, MAX_REASON_LEN))


def _decode_bytes(view: memoryview, pos: int, limit: int) -> tuple[bytes, int]:
    size, pos = decode_varint(view, pos)
    if size > limit:
        raise DecodeError(f"field of {size} bytes exceeds {limit}")
    if size > len(view) - pos:
        raise DecodeError("truncated field")
    return bytes(view[pos : pos + size]), pos + size


def _decode_text(view: memoryview, pos: int, limit: int) -> tuple[str, int]:
    raw, pos = _decode_bytes(view, pos, limit)
    try:
        return raw.decode("utf-8"), pos
    except UnicodeDecodeError as exc:
        raise DecodeError("text field is not UTF-8") from exc


__all__ = [
    "DEFAULT_MAX_PENDING",
    "DEFAULT_WINDOW",
    "MAX_ID_LEN",
    "MAX_PROTOCOL_LEN",
    "MAX_REASON_LEN",
    "MESSAGE_OVERHEAD",
    "MIN_WINDOW",
    "ChannelClosed",
    "ChannelOpened",
    "ChannelRequestWithdrawn",
    "ChannelRequested",
    "ChannelState",
    "Event",
    "GoodbyeReceived",
    "MessageType",
    "Mux",
    "PongReceived",
    "Readable",
    "Writable",
]
