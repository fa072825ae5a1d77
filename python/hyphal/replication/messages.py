"""The messages of a feed replication channel and their byte encoding.

Every message is ``u8 type`` followed by fixed-width little-endian integers
and ``u32le``-length-prefixed byte strings; docs/PROTOCOL.md §10
gives each layout. Decoding is strict and bounded: anything malformed,
oversized or with trailing bytes raises :class:`~hyphal.errors.DecodeError`
and nothing else. Decoded blocks and proofs are ``memoryview`` slices of the
received buffer, so a DATA message is never copied on the way in.

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


_U8 = struct.Struct("<B")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_SYNC = struct.Struct("<QQ")
_RANGE = struct.Struct("<QQ")
_REQUEST = struct.Struct("<IQQQQQ")


# -- messages ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Auth:
    """The capability MAC (see :mod:`hyphal.replication.capability`); first message of each side."""

    mac: bytes

    def encode(self) -> bytes:
        _require(_auth_error(len(self.mac)))
        return _U8.pack(MessageType.AUTH) + self.mac


@dataclass(frozen=True, slots=True)
class Sync:
    """The sender's verified state: fork, length and the signed head for it (empty at length 0)."""

    fork: int
    length: int
    head: bytes = b""

    def encode(self) -> bytes:
        _require(_sync_error(self.fork, self.length, len(self.head)))
        return b"".join((_U8.pack(MessageType.SYNC), _SYNC.pack(self.fork, self.length), _blob(self.head)))


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
        return _U8.pack(MessageType.REQUEST) + _REQUEST.pack(
            self.id, self.fork, self.length, self.start, self.end, self.upgrade_from
        )


@dataclass(frozen=True, slots=True)
class Cancel:
    """Withdraw a request; it gets no reply, though a reply already sent may still arrive."""

    id: int

    def encode(self) -> bytes:
        _require(None if 0 <= self.id <= MAX_U32 else "request id out of range")
        return _U8.pack(MessageType.CANCEL) + _U32.pack(self.id)


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
        parts: list[Buffer] = [
            _U8.pack(MessageType.DATA),
            _U32.pack(self.id),
            _U32.pack(len(self.head)),
            self.head,
            _U32.pack(proof_size),
            self.proof,
            _U32.pack(len(sizes)),
        ]
        for block, size in zip(self.blocks, sizes, strict=True):
            parts.append(_U32.pack(size))
            parts.append(block)
        return parts


@dataclass(frozen=True, slots=True)
class NoData:
    """The request will not be answered with DATA."""

    id: int
    reason: NoDataReason

    def encode(self) -> bytes:
        _require(None if 0 <= self.id <= MAX_U32 else "request id out of range")
        return _U8.pack(MessageType.NO_DATA) + _U32.pack(self.id) + _U8.pack(NoDataReason(self.reason))


@dataclass(frozen=True, slots=True)
class Head:
    """A live update: the sender verified (or, as the writer, signed) a new head."""

    head: bytes

    def encode(self) -> bytes:
        _require(
            None if 0 < len(self.head) <= MAX_HEAD_SIZE else "HEAD needs a head of 1..MAX_HEAD_SIZE bytes"
        )
        return _U8.pack(MessageType.HEAD) + _blob(self.head)


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
    try:
        view = memoryview(data)
        if view.ndim != 1 or view.itemsize != 1:
            view = view.cast("B")
    except (TypeError, ValueError) as exc:
        raise DecodeError("message is not a contiguous byte buffer") from exc
    if view.nbytes > MAX_MESSAGE_SIZE:
        raise DecodeError("message larger than MAX_MESSAGE_SIZE")
    reader = _Reader(view)
    kind = reader.u8()
    decoder = _DECODERS.get(kind)
    if decoder is None:
        raise DecodeError(f"unknown message type {kind}")
    message = decoder(reader)
    reader.finish()
    return message


class _Reader:
    __slots__ = ("_offset", "_view")

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self._offset = 0

    def take(self, size: int) -> memoryview:
        end = self._offset + size
        if end > self._view.nbytes:
            raise DecodeError("message truncated")
        out = self._view[self._offset : end]
        self._offset = end
        return out

    def unpack(self, fmt: struct.Struct) -> tuple[int, ...]:
        values: tuple[int, ...] = fmt.unpack(self.take(fmt.size))
        return values

    def u8(self) -> int:
        return self.unpack(_U8)[0]

    def u32(self) -> int:
        return self.unpack(_U32)[0]

    def blob(self, limit: int) -> memoryview:
        size = self.u32()
        if size > limit:
            raise DecodeError(f"byte string of {size} bytes exceeds its limit of {limit}")
        return self.take(size)

    def blobs(self, count: int) -> tuple[memoryview, ...]:
        """``count`` u32-prefixed byte strings in a row: DATA's blocks, the hot loop of a download."""
        view, pos, end = self._view, self._offset, self._view.nbytes
        unpack_from = _U32.unpack_from
        out: list[memoryview] = []
        for _ in range(count):
            # Each prefix is read before its bytes, so a lying count fails on truncation
            # after at most the message's own length of work.
            if pos + 4 > end:
                raise DecodeError("message truncated")
            (size,) = unpack_from(view, pos)
            pos += 4
            if pos + size > end:
                raise DecodeError("message truncated")
            out.append(view[pos : pos + size])
            pos += size
        self._offset = pos
        return tuple(out)

    def finish(self) -> None:
        if self._offset != self._view.nbytes:
            raise DecodeError("trailing bytes after message")


def _decode_auth(r: _Reader) -> Auth:
    return Auth(bytes(r.take(MAC_SIZE)))


def _decode_sync(r: _Reader) -> Sync:
    fork, length = r.unpack(_SYNC)
    head = r.blob(MAX_HEAD_SIZE)
    _reject(_sync_error(fork, length, head.nbytes))
    return Sync(fork, length, bytes(head))


def _decode_ranges(r: _Reader, open_end_ok: bool) -> tuple[Range, ...]:
    count = r.u32()
    if not 0 < count <= MAX_RANGES_PER_MESSAGE:
        raise DecodeError(f"range count {count} outside 1..{MAX_RANGES_PER_MESSAGE}")
    raw = r.take(count * _RANGE.size)
    ranges = tuple((s, e) for s, e in _RANGE.iter_unpack(raw))
    _reject(_ranges_error(ranges, open_end_ok))
    return ranges


def _decode_request(r: _Reader) -> Request:
    fields = r.unpack(_REQUEST)
    _reject(_request_error(*fields))
    return Request(*fields)


def _decode_cancel(r: _Reader) -> Cancel:
    return Cancel(r.u32())


def _decode_data(r: _Reader) -> Data:
    request_id = r.u32()
    head = bytes(r.blob(MAX_HEAD_SIZE))
    proof = r.blob(MAX_PROOF_SIZE)
    count = r.u32()
    _reject(_data_error(request_id, len(head), proof.nbytes, count))
    return Data(request_id, head, proof, r.blobs(count))


def _decode_no_data(r: _Reader) -> NoData:
    request_id = r.u32()
    reason = r.u8()
    if reason not in NoDataReason._value2member_map_:
        raise DecodeError(f"unknown NO_DATA reason {reason}")
    return NoData(request_id, NoDataReason(reason))


def _decode_head(r: _Reader) -> Head:
    head = r.blob(MAX_HEAD_SIZE)
    if head.nbytes == 0:
        raise DecodeError("empty HEAD")
    return Head(bytes(head))


_DECODERS: dict[int, Callable[[_Reader], Message]] = {
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
    return b"".join([_U8.pack(kind), _U32.pack(len(ranges)), *(_RANGE.pack(s, e) for s, e in ranges)])


def _blob(data: bytes) -> bytes:
    return _U32.pack(len(data)) + data


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
