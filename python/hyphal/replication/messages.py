"""The messages of a feed replication channel and their byte encoding.

Every message is ``u8 type`` followed by fixed-width little-endian integers
and ``u32le``-length-prefixed byte strings; docs/PROTOCOL.md §10
gives each layout. Decoding is strict and bounded: anything malformed,
oversized or with trailing bytes raises :class:`~hyphal.errors.DecodeError`
and nothing else (the fields are read and written with :mod:`hyphal.codec`).
Decoded blocks and proofs are ``memoryview`` slices of the received buffer,
so a DATA message is never copied on the way in.

The encoders check the same rules as the decoders (and raise
:class:`~hyphal.errors.InvalidInput`), so we never send what a peer must
reject.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import TypeAlias

from typing_extensions import Buffer

from hyphal.buffers import Parts
from hyphal.codec import Reader, Writer, byte_view
from hyphal.errors import DecodeError, InvalidInput
from hyphal.replication.capability import MAC_SIZE
from hyphal.replication.ranges import OPEN_END

MAX_LENGTH = 2**62
"""Longest feed (PROTOCOL.md §2)."""
# Under the connection's default 4 MiB frame (PROTOCOL.md §8), with room for the mux header.
MAX_MESSAGE_SIZE = 4 * 1024 * 1024 - 64 * 1024
"""No message, DATA included, is larger; a request for blocks that would not fit gets NO_DATA(TOO_LARGE)."""
MAX_HEAD_SIZE = 32 * 1024
"""A signed head blob: room for an M-of-N head with all 255 signers' signatures."""
MAX_PROOF_SIZE = 16 * 1024
"""An encoded proof never needs more than a few hundred nodes (40 bytes each) for n ≤ 2^62."""
MAX_BLOCKS_PER_REQUEST = 1024
"""Blocks in one REQUEST / DATA."""
MAX_RANGES_PER_MESSAGE = 1024
"""Ranges in one HAVE / WANT / UNWANT; longer lists are split over several messages."""
MAX_U32 = 2**32 - 1
MAX_U64 = 2**64 - 1

Range: TypeAlias = tuple[int, int]


class MessageType(IntEnum):
    AUTH = 1
    SYNC = 2
    HAVE = 3
    WANT = 4
    UNWANT = 5
    REQUEST = 6
    CANCEL = 7
    DATA = 8
    NO_DATA = 9
    HEAD = 10


class NoDataReason(IntEnum):
    """Why a REQUEST got no DATA."""

    NOT_AVAILABLE = 1
    """The responder lacks some block or node the reply needs."""
    WRONG_FORK = 2
    """The request names a fork other than the responder's."""
    BEYOND_LENGTH = 3
    """The request's length is beyond the responder's verified length."""
    BUSY = 4
    """Too many requests from this peer are queued; ask again later or elsewhere."""
    TOO_LARGE = 5
    """The reply would exceed MAX_MESSAGE_SIZE; ask for fewer blocks."""


_SYNC = struct.Struct("<QQ")
_RANGE = struct.Struct("<QQ")
_REQUEST = struct.Struct("<IQQQQQ")
# Messages of one fixed layout are encoded by one precompiled struct, type byte included: REQUEST
# and CANCEL go out per request, and the checks before them already bound every field.
_REQUEST_MESSAGE = struct.Struct("<BIQQQQQ")
_CANCEL_MESSAGE = struct.Struct("<BI")
_NO_DATA_MESSAGE = struct.Struct("<BIB")


# -- messages ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Auth:
    """The capability MAC (see :mod:`hyphal.replication.capability`); first message of each side."""

    mac: bytes

    def encode(self) -> bytes:
        _require(_auth_error(len(self.mac)))
        return _writer(MessageType.AUTH).raw(self.mac).to_bytes()


@dataclass(frozen=True, slots=True)
class Sync:
    """The sender's verified state: fork, length and the signed head for it (empty at length 0)."""

    fork: int
    length: int
    head: bytes = b""

    def encode(self) -> bytes:
        _require(_sync_error(self.fork, self.length, len(self.head)))
        w = _writer(MessageType.SYNC).pack(_SYNC, "SYNC fork and length", self.fork, self.length)
        return w.bytes32(self.head, MAX_HEAD_SIZE, "SYNC head").to_bytes()


@dataclass(frozen=True, slots=True)
class Have:
    """Blocks the sender now also holds (additive until its next SYNC)."""

    ranges: tuple[Range, ...]

    def encode(self) -> bytes:
        return _encode_ranges(MessageType.HAVE, self.ranges, open_end_ok=False)


@dataclass(frozen=True, slots=True)
class Want:
    """Blocks the sender is interested in; an ``OPEN_END`` end means "and all future blocks"."""

    ranges: tuple[Range, ...]

    def encode(self) -> bytes:
        return _encode_ranges(MessageType.WANT, self.ranges, open_end_ok=True)


@dataclass(frozen=True, slots=True)
class Unwant:
    """Blocks the sender is no longer interested in."""

    ranges: tuple[Range, ...]

    def encode(self) -> bytes:
        return _encode_ranges(MessageType.UNWANT, self.ranges, open_end_ok=True)


@dataclass(frozen=True, slots=True)
class Request:
    """Ask for blocks ``[start, end)`` and one proof for a tree of ``length`` upgrading from ``upgrade_from``.

    With ``upgrade_from == length`` the requester verifies against its own
    roots at ``length`` and the reply carries no head. With
    ``upgrade_from < length`` the reply proves a tree of the responder's
    length (at least ``length``) and carries its signed head.
    """

    id: int
    fork: int
    length: int
    start: int
    end: int
    upgrade_from: int

    def encode(self) -> bytes:
        _require(_request_error(self.id, self.fork, self.length, self.start, self.end, self.upgrade_from))
        return _REQUEST_MESSAGE.pack(
            MessageType.REQUEST, self.id, self.fork, self.length, self.start, self.end, self.upgrade_from
        )


@dataclass(frozen=True, slots=True)
class Cancel:
    """Withdraw a request; it gets no reply, though a reply already sent may still arrive."""

    id: int

    def encode(self) -> bytes:
        _require(None if 0 <= self.id <= MAX_U32 else "request id out of range")
        return _CANCEL_MESSAGE.pack(MessageType.CANCEL, self.id)


@dataclass(frozen=True, slots=True)
class Data:
    """The reply to a request: the responder's head when upgrading, one proof, and the blocks."""

    id: int
    head: bytes
    proof: Buffer
    blocks: tuple[Buffer, ...]

    def encoded_size(self) -> int:
        return _data_size(
            len(self.head), memoryview(self.proof).nbytes, (memoryview(b).nbytes for b in self.blocks)
        )

    def encode(self) -> bytes:
        return b"".join(self.encode_parts())

    def encode_parts(self) -> list[Buffer]:
        """The encoding as pieces: the blocks themselves are not copied (see Channel.send)."""
        sizes = [memoryview(b).nbytes for b in self.blocks]
        proof_size = memoryview(self.proof).nbytes
        _require(_data_error(self.id, len(self.head), proof_size, len(sizes)))
        if _data_size(len(self.head), proof_size, sizes) > MAX_MESSAGE_SIZE:
            raise InvalidInput("DATA larger than MAX_MESSAGE_SIZE")
        w = _writer(MessageType.DATA).u32(self.id, "DATA id")
        w.bytes32(self.head, MAX_HEAD_SIZE, "DATA head").bytes32(self.proof, MAX_PROOF_SIZE, "DATA proof")
        w.u32(len(sizes), "DATA block count")
        for block in self.blocks:
            w.bytes32(block, MAX_MESSAGE_SIZE, "DATA block")
        return w.parts()


@dataclass(frozen=True, slots=True)
class NoData:
    """The request will not be answered with DATA."""

    id: int
    reason: NoDataReason

    def encode(self) -> bytes:
        _require(None if 0 <= self.id <= MAX_U32 else "request id out of range")
        return _NO_DATA_MESSAGE.pack(MessageType.NO_DATA, self.id, NoDataReason(self.reason))


@dataclass(frozen=True, slots=True)
class Head:
    """A live update: the sender verified (or, as the writer, signed) a new head."""

    head: bytes

    def encode(self) -> bytes:
        _require(
            None if 0 < len(self.head) <= MAX_HEAD_SIZE else "HEAD needs a head of 1..MAX_HEAD_SIZE bytes"
        )
        return _writer(MessageType.HEAD).bytes32(self.head, MAX_HEAD_SIZE, "HEAD head").to_bytes()


Message: TypeAlias = Auth | Sync | Have | Want | Unwant | Request | Cancel | Data | NoData | Head


def encode_range_messages(kind: type[Have | Want | Unwant], ranges: Sequence[Range]) -> list[bytes]:
    """``ranges`` (sorted, disjoint) as as many messages of ``kind`` as the per-message cap needs."""
    return [
        kind(tuple(ranges[i : i + MAX_RANGES_PER_MESSAGE])).encode()
        for i in range(0, len(ranges), MAX_RANGES_PER_MESSAGE)
    ]


# -- decoding ------------------------------------------------------------------


def decode_message(data: Buffer | Parts) -> Message:
    """Parse one message; raises :class:`~hyphal.errors.DecodeError` for anything malformed."""
    if isinstance(data, (list, tuple)):
        data = b"".join(data)
    view = byte_view(data)
    if view.nbytes > MAX_MESSAGE_SIZE:
        raise DecodeError("message larger than MAX_MESSAGE_SIZE")
    reader = Reader(view)
    kind = reader.u8("message type")
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise DecodeError(f"unknown message type {kind}")
    message = decoder(reader)
    reader.expect_end()
    return message


_View: TypeAlias = Reader[memoryview]


def _decode_auth(r: _View) -> Auth:
    return Auth(bytes(r.take(MAC_SIZE, "AUTH mac")))


def _decode_sync(r: _View) -> Sync:
    fork, length = r.unpack(_SYNC, "SYNC fork and length")
    head = r.bytes32(MAX_HEAD_SIZE, "SYNC head")
    _reject(_sync_error(fork, length, head.nbytes))
    return Sync(fork, length, bytes(head))


def _decode_ranges(r: _View, open_end_ok: bool) -> tuple[Range, ...]:
    count = r.u32("range count")
    if not 0 < count <= MAX_RANGES_PER_MESSAGE:
        raise DecodeError(f"range count {count} outside 1..{MAX_RANGES_PER_MESSAGE}")
    raw = r.take(count * _RANGE.size, "ranges")
    ranges = tuple((s, e) for s, e in _RANGE.iter_unpack(raw))
    _reject(_ranges_error(ranges, open_end_ok))
    return ranges


def _decode_request(r: _View) -> Request:
    fields = r.unpack(_REQUEST, "REQUEST")
    _reject(_request_error(*fields))
    return Request(*fields)


def _decode_cancel(r: _View) -> Cancel:
    return Cancel(r.u32("CANCEL id"))


def _decode_data(r: _View) -> Data:
    request_id = r.u32("DATA id")
    head = bytes(r.bytes32(MAX_HEAD_SIZE, "DATA head"))
    proof = r.bytes32(MAX_PROOF_SIZE, "DATA proof")
    count = r.u32("DATA block count")
    _reject(_data_error(request_id, len(head), proof.nbytes, count))
    return Data(request_id, head, proof, r.bytes32_run(count, MAX_MESSAGE_SIZE, "DATA block"))


def _decode_no_data(r: _View) -> NoData:
    request_id = r.u32("NO_DATA id")
    reason = r.u8("NO_DATA reason")
    if reason not in NoDataReason._value2member_map_:
        raise DecodeError(f"unknown NO_DATA reason {reason}")
    return NoData(request_id, NoDataReason(reason))


def _decode_head(r: _View) -> Head:
    return Head(bytes(r.bytes32(MAX_HEAD_SIZE, "HEAD head", min_size=1)))


_DECODERS: dict[int, Callable[[_View], Message]] = {
    MessageType.AUTH: _decode_auth,
    MessageType.SYNC: _decode_sync,
    MessageType.HAVE: lambda r: Have(_decode_ranges(r, open_end_ok=False)),
    MessageType.WANT: lambda r: Want(_decode_ranges(r, open_end_ok=True)),
    MessageType.UNWANT: lambda r: Unwant(_decode_ranges(r, open_end_ok=True)),
    MessageType.REQUEST: _decode_request,
    MessageType.CANCEL: _decode_cancel,
    MessageType.DATA: _decode_data,
    MessageType.NO_DATA: _decode_no_data,
    MessageType.HEAD: _decode_head,
}


# -- the rules, shared by encoders and decoders -----------------------------------


def _auth_error(mac_size: int) -> str | None:
    return None if mac_size == MAC_SIZE else f"AUTH mac must be {MAC_SIZE} bytes"


def _sync_error(fork: int, length: int, head_size: int) -> str | None:
    if not 0 <= fork <= MAX_U64:
        return "fork out of range"
    if not 0 <= length <= MAX_LENGTH:
        return "length out of range"
    if head_size > MAX_HEAD_SIZE:
        return "head too large"
    if length > 0 and head_size == 0:
        return "SYNC of a non-empty feed without a head"
    return None


def _ranges_error(ranges: Sequence[Range], open_end_ok: bool) -> str | None:
    if not 0 < len(ranges) <= MAX_RANGES_PER_MESSAGE:
        return f"range count {len(ranges)} outside 1..{MAX_RANGES_PER_MESSAGE}"
    previous_end = -1
    for start, end in ranges:
        if not (start < end and (end <= MAX_LENGTH or (open_end_ok and end == OPEN_END))):
            return f"bad range [{start}, {end})"
        # Sorted and non-adjacent: a canonical list, merged in one pass by the receiver.
        if start <= previous_end:
            return "ranges not sorted, overlapping or adjacent"
        previous_end = end
    return None


def _request_error(
    request_id: int, fork: int, length: int, start: int, end: int, upgrade_from: int
) -> str | None:
    if not 0 <= request_id <= MAX_U32:
        return "request id out of range"
    if not 0 <= fork <= MAX_U64:
        return "fork out of range"
    if not 0 <= start <= end <= length <= MAX_LENGTH:
        return "REQUEST needs start <= end <= length <= 2^62"
    if not 0 <= upgrade_from <= length:
        return "REQUEST needs upgrade_from <= length"
    if end - start > MAX_BLOCKS_PER_REQUEST:
        return f"REQUEST for more than {MAX_BLOCKS_PER_REQUEST} blocks"
    if start == end and upgrade_from == length:
        return "REQUEST for nothing (no blocks, no upgrade)"
    return None


def _data_error(request_id: int, head_size: int, proof_size: int, count: int) -> str | None:
    if not 0 <= request_id <= MAX_U32:
        return "request id out of range"
    if head_size > MAX_HEAD_SIZE:
        return "head too large"
    if proof_size > MAX_PROOF_SIZE:
        return "proof too large"
    if count > MAX_BLOCKS_PER_REQUEST:
        return f"DATA with more than {MAX_BLOCKS_PER_REQUEST} blocks"
    return None


def _data_size(head_size: int, proof_size: int, block_sizes: Iterable[int]) -> int:
    # type, id, three length prefixes and the block count, then a u32 prefix per block
    return 17 + head_size + proof_size + sum(4 + s for s in block_sizes)


def _encode_ranges(kind: MessageType, ranges: tuple[Range, ...], open_end_ok: bool) -> bytes:
    _require(_ranges_error(ranges, open_end_ok))
    w = _writer(kind).u32(len(ranges), "range count")
    return w.raw(b"".join([_RANGE.pack(s, e) for s, e in ranges])).to_bytes()


def _writer(kind: MessageType) -> Writer:
    return Writer(_TYPE_BYTE[kind])


_TYPE_BYTE = {kind: bytes((kind,)) for kind in MessageType}


def _require(error: str | None) -> None:
    if error is not None:
        raise InvalidInput(error)


def _reject(error: str | None) -> None:
    if error is not None:
        raise DecodeError(error)


__all__ = [
    "MAX_BLOCKS_PER_REQUEST",
    "MAX_HEAD_SIZE",
    "MAX_LENGTH",
    "MAX_MESSAGE_SIZE",
    "MAX_PROOF_SIZE",
    "MAX_RANGES_PER_MESSAGE",
    "Auth",
    "Cancel",
    "Data",
    "Have",
    "Head",
    "Message",
    "MessageType",
    "NoData",
    "NoDataReason",
    "Range",
    "Request",
    "Sync",
    "Unwant",
    "Want",
    "decode_message",
    "encode_range_messages",
]
