"""Messages of the blob transfer protocol, channel ``hyphal/blob/1`` (docs/PROTOCOL.md §12.5).

Every message is one channel message: ``u8 type ‖ body``, integers little-endian, read
with :mod:`hyphal.codec`.

Requests (requester → provider)::

    HAS     0x01  u32 id ‖ hash[32]
    GET     0x02  u32 id ‖ hash[32] ‖ u64 size ‖ u64 start ‖ u64 end   (groups [start, end))
    CANCEL  0x03  u32 id

Replies (provider → requester)::

    HAVE    0x81  u32 id ‖ u8 state ‖ u64 size ‖ bitfield      (state 0: complete, no bitfield;
                                                                1: partial; 2: absent, size 0)
    DATA    0x82  u32 id ‖ u8 last ‖ bytes                     (the next piece of the encoded range)
    ERROR   0x83  u32 id ‖ u8 code ‖ utf-8 message
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from typing_extensions import Buffer

from hyphal.codec import Reader, byte_view
from hyphal.errors import DecodeError

MAX_GET_GROUPS = 1024
"""Largest range one GET may ask for: 16 MiB."""
MAX_BITFIELD = 1 << 20
"""Largest bitfield in a HAVE (8 Mi groups, 128 GiB); larger partial blobs answer ERROR."""
MAX_ERROR_TEXT = 512

HAS, GET, CANCEL, HAVE, DATA, ERROR = 0x01, 0x02, 0x03, 0x81, 0x82, 0x83

# The bodies after the type byte, read with hyphal.codec ...
_HAS = struct.Struct("<I32s")
_GET = struct.Struct("<I32sQQQ")
_CANCEL = struct.Struct("<I")
_HAVE = struct.Struct("<IBQ")
_DATA = struct.Struct("<IB")
_ERROR = struct.Struct("<IB")
# ... and each fixed part written as one precompiled struct, type byte included (a DATA header
# goes out per piece).
_HAS_MESSAGE = struct.Struct("<BI32s")
_GET_MESSAGE = struct.Struct("<BI32sQQQ")
_CANCEL_MESSAGE = struct.Struct("<BI")
_HAVE_MESSAGE = struct.Struct("<BIBQ")
_DATA_MESSAGE = struct.Struct("<BIB")
_ERROR_MESSAGE = struct.Struct("<BIB")
DATA_HEADER = _DATA_MESSAGE.size


class HaveState(enum.IntEnum):
    COMPLETE = 0
    PARTIAL = 1
    ABSENT = 2


class ErrorCode(enum.IntEnum):
    NOT_FOUND = 1
    """The provider holds none of the blob."""
    NOT_AVAILABLE = 2
    """It lacks some of the groups asked for."""
    BAD_REQUEST = 3
    """The range is empty, outside the blob, over MAX_GET_GROUPS, or the size is wrong."""
    INTERNAL = 4
    """Its copy failed verification (a corrupt disk) or another local failure."""


@dataclass(frozen=True)
class Has:
    id: int
    hash: bytes


@dataclass(frozen=True)
class Get:
    id: int
    hash: bytes
    size: int
    start: int
    end: int


@dataclass(frozen=True)
class Cancel:
    id: int


@dataclass(frozen=True)
class Have:
    id: int
    state: HaveState
    size: int
    bitfield: bytes = b""


@dataclass(frozen=True)
class Data:
    id: int
    last: bool
    payload: memoryview


@dataclass(frozen=True)
class Error:
    id: int
    code: int
    text: str


Request = Has | Get | Cancel
Reply = Have | Data | Error


def encode_has(id: int, hash_: bytes) -> bytes:  # noqa: A002
    return _HAS_MESSAGE.pack(HAS, id, hash_)


def encode_get(id: int, hash_: bytes, size: int, start: int, end: int) -> bytes:  # noqa: A002
    return _GET_MESSAGE.pack(GET, id, hash_, size, start, end)


def encode_cancel(id: int) -> bytes:  # noqa: A002
    return _CANCEL_MESSAGE.pack(CANCEL, id)


def encode_have(id: int, state: HaveState, size: int, bitfield: bytes = b"") -> bytes:  # noqa: A002
    return _HAVE_MESSAGE.pack(HAVE, id, state, size) + bitfield


def data_header(id: int, last: bool) -> bytes:  # noqa: A002
    return _DATA_MESSAGE.pack(DATA, id, last)


def encode_error(id: int, code: ErrorCode, text: str) -> bytes:  # noqa: A002
    return _ERROR_MESSAGE.pack(ERROR, id, code) + text.encode()[:MAX_ERROR_TEXT]


def decode_request(message: Buffer) -> Request:
    r = Reader(byte_view(message), "blob request")
    kind = r.u8("message type")
    request: Request
    if kind == HAS:
        request = Has(*r.unpack(_HAS, "HAS"))
    elif kind == GET:
        request = Get(*r.unpack(_GET, "GET"))
    elif kind == CANCEL:
        request = Cancel(*r.unpack(_CANCEL, "CANCEL"))
    else:
        raise DecodeError(f"unknown request type 0x{kind:02x}")
    r.expect_end()
    return request


def decode_reply(message: Buffer) -> Reply:
    r = Reader(byte_view(message), "blob reply")
    kind = r.u8("message type")
    if kind == HAVE:
        id_, state, size = r.unpack(_HAVE, "HAVE")
        if state not in HaveState.__members__.values():
            raise DecodeError(f"HAVE state {state} is unknown")
        bits = bytes(r.rest("HAVE bitfield", MAX_BITFIELD))
        if state != HaveState.PARTIAL and bits:
            raise DecodeError("HAVE bitfield of the wrong size")
        return Have(id_, HaveState(state), size, bits)
    if kind == DATA:
        id_, last = r.unpack(_DATA, "DATA")
        if last > 1:
            raise DecodeError("DATA last flag is not 0 or 1")
        return Data(id_, bool(last), r.rest("DATA payload"))
    if kind == ERROR:
        id_, code = r.unpack(_ERROR, "ERROR")
        return Error(id_, code, bytes(r.rest("ERROR text")).decode("utf-8", "replace"))
    raise DecodeError(f"unknown reply type 0x{kind:02x}")


__all__ = [
    "CANCEL",
    "DATA",
    "DATA_HEADER",
    "ERROR",
    "GET",
    "HAS",
    "HAVE",
    "MAX_BITFIELD",
    "MAX_GET_GROUPS",
    "Cancel",
    "Data",
    "Error",
    "ErrorCode",
    "Get",
    "Has",
    "Have",
    "HaveState",
    "Reply",
    "Request",
    "decode_reply",
    "decode_request",
    "encode_cancel",
    "encode_error",
    "encode_get",
    "encode_has",
    "encode_have",
]
