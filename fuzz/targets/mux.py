"""The channel multiplexer (net/mux.py): a peer's frame plaintexts, one after another.

The fuzzed side behaves as a node does: it opens one pair of its own before
the peer speaks, accepts or rejects the peer's requests, reads everything
that arrives (returning credit), answers on open channels and closes what the
peer closed. Refusal: ``DecodeError`` or ``ProtocolError`` (the connection is
then closed).
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.harness import Target, join, split
from hyphal.errors import DecodeError, ProtocolError
from hyphal.net.mux import (
    MIN_WINDOW,
    ChannelClosed,
    ChannelOpened,
    ChannelRequested,
    Mux,
    Readable,
    Writable,
)

FEED = ("hyphal/feed/1", bytes(range(32)))
BLOB = ("hyphal/blob/1", b"")


def _receiver() -> tuple[Mux, int]:
    mux = Mux(window=MIN_WINDOW * 4, max_pending=4)
    return mux, mux.open(*FEED)


def _react(mux: Mux, events: list[object]) -> None:
    for event in events:
        if isinstance(event, ChannelRequested):
            if len(event.id) % 2 == 0:
                mux.open(event.protocol, event.id)
            else:
                mux.reject(event.protocol, event.id, "not here")
        elif isinstance(event, Readable):
            while mux.read(event.channel) is not None:
                pass
        elif isinstance(event, ChannelOpened | Writable):
            if mux.can_send(event.channel, 8):
                mux.send(event.channel, b"answer!!")
        elif isinstance(event, ChannelClosed):
            mux.close(event.channel)


def run(data: bytes) -> None:
    mux, _ = _receiver()
    for frame in split(data):
        _react(mux, list(mux.receive(frame)))
        mux.take_frames()


def seeds() -> Iterator[bytes]:
    """A real conversation: the peer's frames to the receiver, while the receiver answers."""
    peer = Mux(window=MIN_WINDOW * 4)
    receiver, _ = _receiver()
    sent: list[bytes] = []

    def exchange() -> None:
        for frame in peer.take_frames():
            sent.append(frame)
            _react(receiver, list(receiver.receive(frame)))
        for frame in receiver.take_frames():
            peer.receive(frame)

    feed = peer.open(*FEED)
    blob = peer.open(*BLOB)
    other = peer.open("hyphal/group/1", b"\x07")  # an odd id: the receiver rejects it
    exchange()
    peer.send(feed, b"hello over the feed channel")
    peer.send(blob, [b"a message ", b"in pieces"])
    peer.ping(7)
    exchange()
    for _ in range(12):  # enough to make the receiver return credit
        if peer.can_send(feed, 300):
            peer.send(feed, bytes(300))
    exchange()
    peer.close(blob, "done with blobs")
    peer.close(other)
    peer.goodbye("bye")
    exchange()
    yield join(sent)
    for frame in sent:
        yield join([frame])


TARGET = Target("mux", run, (DecodeError, ProtocolError), seeds)
