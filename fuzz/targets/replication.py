"""Feed replication messages (replication/messages.py), as a peer sends them on a feed channel.

Every decoded message must encode back to exactly its bytes: the format is
canonical, so two peers never disagree on what a message said. Refusal:
``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import Feed
from fuzz.harness import Target
from hyphal.errors import DecodeError
from hyphal.replication.messages import (
    Auth,
    Cancel,
    Data,
    Have,
    Head,
    NoData,
    NoDataReason,
    Request,
    Sync,
    Unwant,
    Want,
    decode_message,
)
from hyphal.replication.ranges import OPEN_END


def run(data: bytes) -> None:
    message = decode_message(memoryview(data))  # drivers hand over views of the frame
    assert message.encode() == data, f"{type(message).__name__} decoded from a non-canonical encoding"


def seeds() -> Iterator[bytes]:
    feed = Feed()
    head = feed.head.encode()
    yield Auth(bytes(range(32))).encode()
    yield Sync(0, 0).encode()
    yield Sync(3, feed.length, head).encode()
    yield Have(((0, 3), (5, 7))).encode()
    yield Want(((0, OPEN_END),)).encode()
    yield Unwant(((2, 4), (6, 9))).encode()
    yield Request(1, 0, feed.length, 2, 4, 0).encode()
    yield Request(2, 0, 5, 5, 5, 3).encode()
    yield Cancel(9).encode()
    yield Data(1, head, feed.proof(2, 4), (b"block 2", b"block 3")).encode()
    yield Data(2, b"", feed.proof(0, 1, 1), (b"b",)).encode()
    yield NoData(3, NoDataReason(next(iter(NoDataReason)))).encode()
    yield Head(head).encode()


TARGET = Target("replication", run, (DecodeError,), seeds)
