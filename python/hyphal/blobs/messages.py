"""Messages of the blob transfer protocol, channel ``hyphal/blob/1`` (docs/PROTOCOL.md §12.5).

Every message is one channel message: ``u8 type ‖ body``, integers little-endian.

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

from hyphal.errors import DecodeError

MAX_GET_GROUPS = 1024
"""Largest range one GET may ask for: 16 MiB."""
MAX_BITFIELD = 1 << 20
"""Largest bitfield in a HAVE (8 Mi groups, 128 GiB); larger partial blobs answer ERROR."""
MAX_ERROR_TEXT = 512

HAS, GET, CANCEL, HAVE, DATA, ERROR = 0x01, 0x02, 0x03, 0x81, 0x82, 0x83

_HAS = struct.Struct("<BI32s")
_GET = struct.Struct("<BI32sQQQ")
_CANCEL = struct.Struct("<BI")
_HAVE = struct.Struct("<BIBQ")
_DATA = struct.Struct("<BIB")
_ERROR = struct.Struct("<BIB")
DATA_HEADER = _DATA.size


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
    return _HAS.pack(HAS, id, hash_)


def encode_get(id: int, hash_: bytes, size: int, start: int, end: int) -> bytes:  # noqa: A002
    return _GET.pack(GET, id, hash_, size, start, end)


def encode_cancel(id: int) -> bytes:  # noqa: A002
    return _CANCEL.pack(CANCEL, id)


def encode_have(id: int, state: HaveState, size: int, bitfield: bytes = b"") -> bytes:  # noqa: A002
    return _HAVE.pack(HAVE, id, state, size) + bitfield


def data_header(id: int, last: bool) -> bytes:  # noqa: A002
    return _DATA.pack(DATA, id, last)


def encode_error(id: int, code: ErrorCode, text: str) -> bytes:  # noqa: A002
    return _ERROR.pack(ERROR, id, code) + text.encode()[:MAX_ERROR_TEXT]


def _exact(view: memoryview, layout: struct.Struct, what: str) -> tuple[object, ...]:
    if len(view) != layout.size:
        raise DecodeError(f"{what} message is {len(view)} bytes, not {layout.size}")
    return layout.unpack(view)


def decode_request(message: Buffer) -> Request:
    view = memoryview(message).cast("B")
    if not view:
        raise DecodeError("empty message")
    kind = view[0]
    if kind == HAS:
        _, id_, h = _exact(view, _HAS, "HAS")
        return Has(int(id_), bytes(h))  # type: ignore[call-overload]
    if kind == GET:
        _, id_, h, size, start, end = _exact(view, _GET, "GET")
        return Get(int(id_), bytes(h), int(size), int(start), int(end))  # type: ignore[call-overload]
    if kind == CANCEL:
        _, id_ = _exact(view, _CANCEL, "CANCEL")
        return Cancel(int(id_))  # type: ignore[call-overload]
    raise DecodeError(f"unknown request type 0x{kind:02x}")


def decode_reply(message: Buffer) -> Reply:
    view = memoryview(message).cast("B")
    if not view:
        raise DecodeError("empty message")
    kind = view[0]
    if kind == HAVE:
        if len(view) < _HAVE.size:
            raise DecodeError("HAVE message too short")
        _, id_, state, size = _HAVE.unpack_from(view)
        if state not in HaveState.__members__.values():
            raise DecodeError(f"HAVE state {state} is unknown")
        bits = bytes(view[_HAVE.size :])
        if len(bits) > MAX_BITFIELD or (state != HaveState.PARTIAL and bits):
            raise DecodeError("HAVE bitfield of the wrong size")
        return Have(id_, HaveState(state), size, bits)
    if kind == DATA:
        if len(view) < _DATA.size:
            raise DecodeError("DATA message too short")
        _, id_, last = _DATA.unpack_from(view)
        if last > 1:
            raise DecodeError("DATA last flag is not 0 or 1")
        return Data(id_, bool(last), view[_DATA.size :])
    if kind == ERROR:
        if len(view) < _ERROR.size:
            raise DecodeError("ERROR message too short")
        _, id_, code = _ERROR.unpack_from(view)
        return Error(id_, code, bytes(view[_ERROR.size :]).decode("utf-8", "replace"))
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
