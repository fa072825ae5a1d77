"""Sans-I/O channel multiplexing: pairing, batching, credit, close/reject, bad input."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.errors import DecodeError, HyphalError, InvalidInput, ProtocolError
from hyphal.net.frames import MIN_MAX_FRAME, encode_varint
from hyphal.net.mux import (
    MESSAGE_OVERHEAD,
    ChannelClosed,
    ChannelOpened,
    ChannelRequested,
    ChannelRequestWithdrawn,
    ChannelState,
    Event,
    GoodbyeReceived,
    MessageType,
    Mux,
    PongReceived,
    Readable,
    Writable,
)


def pump(sender: Mux, receiver: Mux) -> list[Event]:
    """Deliver everything ``sender`` queued; returns the receiver's events."""
    events: list[Event] = []
    for frame in sender.take_frames():
        events += receiver.receive(frame)
    return events


def paired(window: int = 1 << 20, max_frame: int = 1 << 16) -> tuple[Mux, Mux, int, int]:
    a = Mux(max_frame=max_frame, window=window)
    b = Mux(max_frame=max_frame, window=window)
    ca = a.open("test", b"id")
    assert pump(a, b) == [ChannelRequested("test", b"id")]
    cb = b.open("test", b"id")
    assert b.state(cb) is ChannelState.OPEN  # accepted: open at once
    assert pump(b, a) == [ChannelOpened(ca)]
    return a, b, ca, cb


def test_open_message_bytes() -> None:
    mux = Mux()
    mux.open("feed", b"\x01\x02")
    window = encode_varint(mux.window)
    assert mux.take_frames() == [bytes([MessageType.OPEN, 1]) + window + b"\x04feed\x02\x01\x02"]


def test_data_and_credit_message_bytes() -> None:
    a, b, ca, cb = paired(window=4096)
    a.send(ca, b"hi")
    assert a.take_frames() == [bytes([MessageType.DATA, ca, 2]) + b"hi"]
    b.receive(bytes([MessageType.DATA, ca, 2]) + b"hi")
    # Reading a quarter of the window returns the credit in one CREDIT message.
    a.send(ca, bytes(1024 - MESSAGE_OVERHEAD))
    pump(a, b)
    assert b.read(cb) == b"hi"
    assert not b.has_output
    assert b.read(cb) == bytes(1024 - MESSAGE_OVERHEAD)
    grant = 2 + MESSAGE_OVERHEAD + 1024
    assert b.take_frames() == [bytes([MessageType.CREDIT, cb]) + encode_varint(grant)]


def test_control_message_bytes() -> None:
    a, b, ca, _ = paired()
    a.close(ca, "bye")
    assert a.take_frames() == [bytes([MessageType.CLOSE, ca, 3]) + b"bye"]
    a, b = Mux(), Mux()
    a.open("p", b"")
    pump(a, b)
    b.reject("p", b"", "no")
    assert b.take_frames() == [bytes([MessageType.REJECT, 1, 2]) + b"no"]
    a.ping(300)
    assert a.take_frames() == [bytes([MessageType.PING, 0xAC, 0x02])]
    b.receive(bytes([MessageType.PING, 5]))
    assert b.take_frames() == [bytes([MessageType.PONG, 5])]
    a.goodbye("ok")
    assert a.take_frames() == [bytes([MessageType.GOODBYE, 2]) + b"ok"]


def test_large_messages_travel_alone_and_small_ones_share_frames() -> None:
    a, b, ca, cb = paired(window=1 << 22, max_frame=1 << 20)
    for message in (b"s1", bytes(100_000), b"s2", b"s3"):
        a.send(ca, message)
    frames = a.take_frames()
    assert [len(f) for f in frames] == [5, 100_005, 10]
    for frame in frames:
        b.receive(frame)
    assert [b.read(cb) for _ in range(4)] == [b"s1", bytes(100_000), b"s2", b"s3"]


def test_big_messages_are_views_and_small_ones_never_pin_a_big_frame() -> None:
    a, b, ca, cb = paired(window=1 << 22, max_frame=1 << 20)
    a.batch_size = 1 << 20  # so that both share one frame
    a.send(ca, bytes(100_000))
    a.send(ca, b"small")
    (frame,) = a.take_frames()
    b.receive(frame)
    big, small = b.read(cb), b.read(cb)
    assert isinstance(big, memoryview)
    assert big.obj is frame  # no copy
    assert type(small) is bytes  # a copy: holding it must not keep 100 kB alive
    # A mutable frame may change under us, so nothing is kept as a view of it.
    a.send(ca, bytes(100_000))
    (frame,) = a.take_frames()
    b.receive(bytearray(frame))
    assert type(b.read(cb)) is bytes


def test_a_message_in_pieces_is_one_message_and_mutable_pieces_are_copied() -> None:
    a, b, ca, cb = paired()
    mutable = bytearray(b"-middle-")
    a.send(ca, [b"head", memoryview(mutable), b"tail"])
    mutable[:] = b"XXXXXXXX"  # the caller reuses its buffer at once
    (parts,) = a.take_frame_parts()
    assert b"-middle-" in [bytes(p) for p in parts]  # a copy was queued, not the caller's buffer
    b.receive(b"".join(parts))
    assert bytes(b.read(cb) or b"") == b"head-middle-tail"


def test_both_sides_opening_at_once_pair_up() -> None:
    a, b = Mux(), Mux()
    ca, cb = a.open("p", b"x"), b.open("p", b"x")
    frames_a, frames_b = a.take_frames(), b.take_frames()
    assert [e for f in frames_b for e in a.receive(f)] == [ChannelOpened(ca)]
    assert [e for f in frames_a for e in b.receive(f)] == [ChannelOpened(cb)]
    a.send(ca, b"ping")
    pump(a, b)
    assert b.read(cb) == b"ping"


def test_many_channels_are_independent() -> None:
    a, b = Mux(), Mux()
    numbers = {i: a.open("p", bytes([i])) for i in range(20)}
    for event in pump(a, b):
        assert isinstance(event, ChannelRequested)
        b.open(event.protocol, event.id)
    pump(b, a)
    for i, number in numbers.items():
        a.send(number, bytes([i]) * i)
    events = pump(a, b)
    assert len(events) == 20
    assert all(isinstance(e, Readable) for e in events)
    assert b.requests() == []
    by_id = {e.channel: e for e in events if isinstance(e, Readable)}
    assert len(by_id) == 20
    received = sorted(b.read(number) or b"" for number in by_id)
    assert received == sorted(bytes([i]) * i for i in range(20))


def test_small_messages_are_batched_into_one_frame() -> None:
    a, b, ca, cb = paired()
    for i in range(100):
        a.send(ca, b"message %d" % i)
    frames = a.take_frames()
    assert len(frames) == 1
    assert b.receive(frames[0]) == [Readable(cb)]  # one event per channel per frame
    assert [b.read(cb) for _ in range(100)] == [b"message %d" % i for i in range(100)]
    assert b.read(cb) is None


def test_batches_split_at_max_frame() -> None:
    a, b, ca, cb = paired(max_frame=MIN_MAX_FRAME)
    for _ in range(10):
        a.send(ca, bytes(1000))
    frames = a.take_frames()
    assert len(frames) == 3  # four 1004-byte messages fit in 4096
    assert all(len(f) <= MIN_MAX_FRAME for f in frames)
    assert a.outgoing_bytes == 0
    for frame in frames:
        b.receive(frame)
    assert b.pending(cb) == 10


def test_take_frames_limit() -> None:
    a, _, ca, _ = paired(max_frame=MIN_MAX_FRAME)
    for _ in range(10):
        a.send(ca, bytes(2000))
    first = a.take_frames(limit=1)
    assert len(first) == 1
    assert a.outgoing_bytes > 0
    assert len(a.take_frames()) == 4


def test_message_size_limits() -> None:
    a, _, ca, _ = paired(max_frame=MIN_MAX_FRAME)
    a.send(ca, bytes(a.max_message_size))
    with pytest.raises(InvalidInput):
        a.send(ca, bytes(a.max_message_size + 1))
    with pytest.raises(InvalidInput):
        a.check_sendable(ca, a.max_message_size + 1)


def test_credit_accounting() -> None:
    window = 4096
    a, b, ca, cb = paired(window=window)
    assert a.send_credit(ca) == window
    message = bytes(1000)
    cost = len(message) + MESSAGE_OVERHEAD
    sent = 0
    while a.can_send(ca, len(message)):
        a.send(ca, message)
        sent += 1
    assert sent == window // cost
    assert a.send_credit(ca) == window - sent * cost
    with pytest.raises(InvalidInput):
        a.send(ca, message)
    pump(a, b)
    # The reader returns credit only as it reads: a slow reader stalls the writer.
    assert b.read(cb) == message
    assert pump(b, a) == [Writable(ca)]  # 1032 >= window / 4
    assert a.send_credit(ca) == window - (sent - 1) * cost
    while b.read(cb) is not None:
        pass
    pump(b, a)
    assert a.send_credit(ca) == window


def test_message_larger_than_the_peer_window_is_refused_up_front() -> None:
    a, b = Mux(window=1 << 20), Mux(window=2048)
    ca = a.open("p", b"")
    pump(a, b)
    b.open("p", b"")
    pump(b, a)
    assert a.max_message_for(ca) == 1024 - MESSAGE_OVERHEAD  # half the peer's window
    a.check_sendable(ca, 1024 - MESSAGE_OVERHEAD)
    for size in (1024 - MESSAGE_OVERHEAD + 1, 4000):
        with pytest.raises(InvalidInput, match="limit"):
            a.check_sendable(ca, size)


@given(st.lists(st.integers(min_value=0, max_value=2048 - MESSAGE_OVERHEAD), min_size=1, max_size=60))
def test_a_drained_channel_can_always_take_the_next_message(sizes: list[int]) -> None:
    # Any message the sender accepts fits once the reader has read everything:
    # flow control cannot deadlock, whatever the mix of sizes.
    a, b, ca, cb = paired(window=4096)
    for size in sizes:
        if not a.can_send(ca, size):
            pump(a, b)
            while b.read(cb) is not None:
                pass
            pump(b, a)
        assert a.can_send(ca, size), (size, a.send_credit(ca))
        a.send(ca, bytes(size))


def test_exceeding_the_window_is_a_protocol_error() -> None:
    _a, b, ca, _cb = paired(window=2048)
    frame = bytes([MessageType.DATA, ca]) + encode_varint(3000) + bytes(3000)
    with pytest.raises(ProtocolError, match="window"):
        b.receive(frame)


def test_rejected_request() -> None:
    a, b = Mux(), Mux()
    ca = a.open("p", b"x")
    assert pump(a, b) == [ChannelRequested("p", b"x")]
    b.reject("p", b"x", "not here")
    assert pump(b, a) == [ChannelClosed(ca, "not here")]
    assert a.state(ca) is ChannelState.REMOTE_CLOSED
    assert a.close_reason(ca) == "not here"
    with pytest.raises(InvalidInput):
        a.send(ca, b"late")
    with pytest.raises(InvalidInput):
        b.reject("p", b"x")  # nothing pending any more


def test_close_delivers_queued_data_first_and_frees_the_pair() -> None:
    a, b, ca, cb = paired()
    a.send(ca, b"last words")
    a.close(ca, "done")
    events = pump(a, b)
    assert events == [Readable(cb), ChannelClosed(cb, "done")]
    assert b.read(cb) == b"last words"
    assert b.read(cb) is None
    assert b.state(cb) is ChannelState.REMOTE_CLOSED
    b.close(cb)
    assert not b.has_output  # the peer already forgot the channel
    # The pair can be opened again.
    a.open("test", b"id")
    assert pump(a, b) == [ChannelRequested("test", b"id")]


def test_messages_for_a_channel_closed_here_are_dropped() -> None:
    a, b, ca, cb = paired()
    b.close(cb)
    a.send(ca, b"in flight")
    assert pump(a, b) == []
    assert pump(b, a) == [ChannelClosed(ca, "")]


def test_withdrawn_request() -> None:
    a, b = Mux(), Mux()
    ca = a.open("p", b"x")
    pump(a, b)
    a.close(ca)
    assert pump(a, b) == [ChannelRequestWithdrawn("p", b"x")]
    assert b.requests() == []
    assert not b.is_requested("p", b"x")
    assert pump(b, a) == []  # answered with a REJECT, which a drops quietly
    # a's marker is gone: b opening the pair later is a new request, not a stale answer.
    b.open("p", b"x")
    assert pump(b, a) == [ChannelRequested("p", b"x")]


def test_an_accept_crossing_a_close_is_not_taken_for_a_new_request() -> None:
    """a opens, b accepts while a closes: b's OPEN answers a's closed channel. Taking it for
    a new request (and accepting it) left a holding a pair b had closed, and the next OPEN
    of the pair from b was 'already paired': a protocol error that killed the connection."""
    a, b = Mux(), Mux()
    ca = a.open("p", b"x")
    pump(a, b)
    cb = b.open("p", b"x")  # b accepts...
    a.close(ca)  # ...while a closes: the two cross on the wire
    assert pump(b, a) == []  # b's OPEN is absorbed, not a request
    assert a.requests() == []
    assert pump(a, b) == [ChannelClosed(cb, "")]
    b.close(cb)
    # The pair opens again cleanly, from either side.
    cb2 = b.open("p", b"x")
    assert pump(b, a) == [ChannelRequested("p", b"x")]
    ca2 = a.open("p", b"x")
    assert pump(a, b) == [ChannelOpened(cb2)]
    assert a.state(ca2) is b.state(cb2) is ChannelState.OPEN


def test_closing_and_reopening_before_any_answer_pairs_with_the_right_answer() -> None:
    a, b = Mux(), Mux()
    first = a.open("p", b"x")
    a.close(first)
    second = a.open("p", b"x")
    pump(a, b)  # b sees OPEN, CLOSE (withdrawn: answered with REJECT), OPEN
    assert b.requests() == [("p", b"x")]
    cb = b.open("p", b"x")
    assert pump(b, a) == [ChannelOpened(second)]
    a.send(second, b"hello")
    pump(a, b)
    assert b.read(cb) == b"hello"


def test_pending_requests_are_bounded() -> None:
    a, b = Mux(), Mux(max_pending=3)
    numbers = [a.open("p", bytes([i])) for i in range(5)]
    assert len(pump(a, b)) == 3
    events = pump(b, a)
    assert events == [ChannelClosed(n, "too many pending channel requests") for n in numbers[3:]]


def test_ping_is_answered_with_pong_and_goodbye_is_reported() -> None:
    a, b = Mux(), Mux()
    a.ping(7)
    assert pump(a, b) == []
    assert pump(b, a) == [PongReceived(7)]
    a.goodbye("bye now")
    assert pump(a, b) == [GoodbyeReceived("bye now")]


def test_long_reasons_are_cut_on_a_character_boundary() -> None:
    a, b, ca, _cb = paired()
    a.close(ca, "é" * 1000)
    (event,) = pump(a, b)
    assert isinstance(event, ChannelClosed)
    assert event.reason == "é" * 512


def test_local_misuse_is_invalid_input() -> None:
    mux = Mux()
    mux.open("p", b"x")
    with pytest.raises(InvalidInput):
        mux.open("p", b"x")
    for protocol, channel_id in (("", b""), ("p" * 256, b""), ("p", bytes(65))):
        with pytest.raises(InvalidInput):
            mux.open(protocol, channel_id)
    with pytest.raises(InvalidInput):
        Mux(window=10)


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (b"", DecodeError),
        (b"\x63", ProtocolError),  # unknown type
        (bytes([MessageType.DATA, 1, 1, 0]), ProtocolError),  # channel never opened
        (bytes([MessageType.DATA]), DecodeError),
        (bytes([MessageType.OPEN, 1, 10, 1]), DecodeError),  # truncated protocol name
        (bytes([MessageType.OPEN, 1, 10, 0, 0]), DecodeError),  # empty protocol name
        (bytes([MessageType.OPEN, 1, 10, 1]) + b"p" + bytes([65]) + bytes(65), DecodeError),  # id too long
        (bytes([MessageType.OPEN, 0, 0x80, 0x08, 1]) + b"p\x00", ProtocolError),  # channel 0 is never valid
        (bytes([MessageType.OPEN, 1, 10, 1]) + b"p\x00", ProtocolError),  # window below 1024
        (bytes([MessageType.CLOSE, 1, 1]) + b"x", ProtocolError),  # channel never opened
        (bytes([MessageType.GOODBYE, 1]) + b"\xff", DecodeError),  # not UTF-8
        (bytes([MessageType.REJECT, 9, 0]), ProtocolError),
        (bytes([MessageType.CREDIT, 3, 1]), ProtocolError),
        (bytes([MessageType.PING]), DecodeError),
    ],
)
def test_bad_frames(frame: bytes, error: type[Exception]) -> None:
    with pytest.raises(error):
        Mux().receive(frame)


def test_protocol_violations_on_live_channels() -> None:
    a, b, ca, cb = paired()
    open_again = bytes([MessageType.OPEN]) + encode_varint(ca) + b"\x80\x08\x04test\x02id"
    with pytest.raises(ProtocolError, match="reuses"):
        b.receive(open_again)
    new_number = bytes([MessageType.OPEN]) + encode_varint(ca + 1) + b"\x80\x08\x04test\x02id"
    with pytest.raises(ProtocolError, match="paired"):
        b.receive(new_number)
    with pytest.raises(ProtocolError, match="accepted"):
        a.receive(bytes([MessageType.REJECT]) + encode_varint(ca) + b"\x00")
    with pytest.raises(ProtocolError, match="2\\^62"):
        a.receive(bytes([MessageType.CREDIT]) + encode_varint(cb) + encode_varint(2**63))


def test_data_before_accepting_is_a_protocol_error() -> None:
    a, b = Mux(), Mux()
    a.open("p", b"x")
    pump(a, b)
    with pytest.raises(ProtocolError, match="before"):
        b.receive(bytes([MessageType.DATA, 1, 1, 0]))


@given(st.binary(max_size=200))
def test_receive_on_garbage_raises_only_hyphal_errors(data: bytes) -> None:
    with contextlib.suppress(HyphalError):
        Mux().receive(data)


@given(st.lists(st.binary(max_size=60), max_size=5))
def test_receive_on_a_live_mux_raises_only_hyphal_errors(frames: list[bytes]) -> None:
    a, b, ca, cb = paired(window=4096)
    a.send(ca, b"x")
    a.close(ca)
    try:
        for frame in [bytes([MessageType.DATA, ca, 2]) + b"ok", *frames]:
            b.receive(frame)
    except HyphalError:
        pass
    assert b.pending(cb) <= 4096 // MESSAGE_OVERHEAD  # the window bounds what is held


class _App:
    """One side's application: channels by pair, opening, accepting, closing what the peer ends."""

    def __init__(self, mux: Mux) -> None:
        self.mux = mux
        self.channels: dict[bytes, int] = {}

    def handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ChannelClosed):
                for key, number in list(self.channels.items()):
                    if number == event.channel:
                        self.mux.close(number)
                        del self.channels[key]

    def open(self, key: bytes) -> None:
        if key not in self.channels:
            self.channels[key] = self.mux.open("p", key)

    def close(self, key: bytes) -> None:
        number = self.channels.pop(key, None)
        if number is not None:
            self.mux.close(number, "bye")

    def answer(self, accept: bool) -> None:
        for _, key in self.mux.requests():
            if accept:
                self.open(key)
            else:
                self.mux.reject("p", key, "no")


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["open", "close", "accept", "reject", "deliver"]),
            st.booleans(),  # which side
            st.sampled_from([b"0", b"1"]),
        ),
        max_size=60,
    )
)
def test_any_legal_interleaving_keeps_both_sides_agreeing(steps: list[tuple[str, bool, bytes]]) -> None:
    """Opens, closes, accepts and rejects from both sides, delivered in any batching: no
    protocol error, and once all is delivered and answered, a pair open on one side is open
    on the other, paired with it (data sent arrives there)."""
    a, b = _App(Mux()), _App(Mux())

    def deliver(sender: _App, receiver: _App) -> None:
        receiver.handle(pump(sender.mux, receiver.mux))

    for action, first, key in steps:
        me, peer = (a, b) if first else (b, a)
        if action == "open":
            me.open(key)
        elif action == "close":
            me.close(key)
        elif action in ("accept", "reject"):
            me.answer(action == "accept")
        else:
            deliver(me, peer)
    for _ in range(6):  # settle: answer every request, deliver both ways
        a.answer(True)
        b.answer(True)
        deliver(a, b)
        deliver(b, a)
    assert a.mux.requests() == b.mux.requests() == []
    for key in (b"0", b"1"):
        ca, cb = a.channels.get(key), b.channels.get(key)
        open_a = ca is not None and a.mux.state(ca) is ChannelState.OPEN
        open_b = cb is not None and b.mux.state(cb) is ChannelState.OPEN
        assert open_a == open_b, key
        if open_a:
            assert ca is not None
            assert cb is not None
            a.mux.send(ca, b"ping " + key)
            deliver(a, b)
            assert b.mux.read(cb) == b"ping " + key
