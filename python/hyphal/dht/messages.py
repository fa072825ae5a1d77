"""The DHT datagrams and their byte encoding (docs/PROTOCOL.md §11.4).

One UDP datagram is one message: a :class:`Request` or a :class:`Response`.
Both carry the request's method and 64-bit transaction id. Decoding is strict
and bounded: anything malformed, oversized or with trailing bytes raises
:class:`~hyphal.errors.DecodeError` and nothing else. Signed records inside a
message (node records, announces, signed values) are carried as bytes and
checked by whoever uses them (:mod:`hyphal.dht.records`), so a forged one is
told apart from a malformed datagram.

The encoders check the same bounds (and raise
:class:`~hyphal.errors.InvalidInput`), so we never send what a peer must
reject. Method-specific payloads have their own small codecs at the end.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from hyphal.codec import Reader
from hyphal.dht.records import Addr, decode_address, encode_address
from hyphal.errors import DecodeError, InvalidInput

WIRE_VERSION = 1
MAX_DATAGRAM_SIZE = 8192
"""No datagram is larger; bigger ones are dropped unread."""
MAX_TOKEN_SIZE = 32
MAX_NODES = 20
"""Node records in one response (k)."""
MAX_RECORD_SIZE = 512
"""A node record or announce (≤ 4 IPv6 addresses) is far smaller."""
MAX_VALUE_SIZE = 1000
"""Immutable values, like BEP 44's cap for mutable ones."""
MAX_ANNOUNCES = 20
"""Announces in one lookup response."""
MAX_U64 = 2**64 - 1


class Kind(IntEnum):
    REQUEST = 1
    RESPONSE = 2


class Method(IntEnum):
    """Built-in RPCs; ids from 64 up are free for extensions (:meth:`DhtNode.register_handler`)."""

    PING = 1
    FIND_NODE = 2
    ANNOUNCE = 3
    LOOKUP = 4
    PUT_IMMUTABLE = 5
    GET_IMMUTABLE = 6
    PUT_MUTABLE = 7
    GET_MUTABLE = 8


FIRST_EXTENSION_METHOD = 64


class Status(IntEnum):
    """A response's status; anything but OK is an error reply."""

    OK = 0
    ERROR = 1
    """Generic refusal (the payload may be a UTF-8 reason)."""
    BAD_TOKEN = 2
    BAD_RECORD = 3
    """A record was malformed, forged, expired or under the wrong key."""
    SEQ_TOO_OLD = 4
    """payload: u64le seq held (BEP 44 error 302)."""
    CAS_MISMATCH = 5
    """payload: u64le seq held, 0 when none (BEP 44 error 301)."""
    TOO_LARGE = 6
    UNKNOWN_METHOD = 7
    FULL = 8
    """The holder's store is full."""
    BUSY = 9
    """Rate limited."""
    UNAUTHORIZED = 10
    """An extension refused the requester (bad signature, no permission, replay)."""
    NOT_FOUND = 11


_HEADER = struct.Struct("<BBBQ")  # version, kind, method, txid
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")
_HAS_TARGET = 1
_HAS_SENDER = 2
_FLAGS = [bytes((i,)) for i in range(4)]
_REQUEST = 1  # Kind.REQUEST and Kind.RESPONSE as plain ints, for the hot paths
_RESPONSE = 2


@dataclass(frozen=True, slots=True)
class Request:
    """``method`` asked of the receiver; ``sender`` is the requester's encoded node record.

    A requester that omits ``sender`` (a client) is never added to routing tables.
    """

    method: int
    txid: int
    target: bytes | None = None
    token: bytes = b""
    payload: bytes = b""
    sender: bytes | None = None

    def encode(self) -> bytes:
        return encode_request(self.method, self.txid, self.target, self.token, self.payload, self.sender)


@dataclass(frozen=True, slots=True)
class Response:
    """The reply to one request: ``status``, the responder's encoded node record, and results.

    ``observed`` is the requester's address as the responder saw it.
    ``nodes`` are encoded node records of nodes closer to the target.
    """

    method: int
    txid: int
    responder: bytes
    observed: Addr
    status: int = Status.OK
    token: bytes = b""
    nodes: tuple[bytes, ...] = ()
    payload: bytes = b""

    def encode(self) -> bytes:
        return encode_response(
            self.method,
            self.txid,
            self.responder,
            self.observed,
            self.status,
            self.token,
            self.nodes,
            self.payload,
        )


Message = Request | Response


# The encoders as functions: the node sends through these without building a message object first
# (a frozen dataclass costs more to build than the bytes). The checks are the classes' contract.


def encode_request(
    method: int,
    txid: int,
    target: bytes | None = None,
    token: bytes = b"",
    payload: bytes = b"",
    sender: bytes | None = None,
) -> bytes:
    """The bytes of ``Request(method, txid, target, token, payload, sender)``."""
    _check_common(method, txid, token, payload)
    flags = 0
    parts = [b"", b""]
    if target is not None:
        if len(target) != 32:
            raise InvalidInput("a target is 32 bytes")
        flags = _HAS_TARGET
        parts.append(target)
    if sender is not None:
        if not 0 < len(sender) <= MAX_RECORD_SIZE:
            raise InvalidInput("sender record size out of range")
        flags |= _HAS_SENDER
        parts += (_U16.pack(len(sender)), sender)
    parts[0] = _HEADER.pack(WIRE_VERSION, _REQUEST, method, txid)
    parts[1] = _FLAGS[flags]
    parts += (_U8.pack(len(token)), token, _U16.pack(len(payload)), payload)
    return _sized(b"".join(parts))


def encode_response(
    method: int,
    txid: int,
    responder: bytes,
    observed: Addr,
    status: int = Status.OK,
    token: bytes = b"",
    nodes: tuple[bytes, ...] = (),
    payload: bytes = b"",
) -> bytes:
    """The bytes of ``Response(method, txid, responder, observed, status, token, nodes, payload)``."""
    _check_common(method, txid, token, payload)
    if not 0 <= status <= 0xFFFF:
        raise InvalidInput("status out of range")
    if not 0 < len(responder) <= MAX_RECORD_SIZE:
        raise InvalidInput("responder record size out of range")
    if len(nodes) > MAX_NODES:
        raise InvalidInput(f"a response carries at most {MAX_NODES} node records")
    parts = [
        _HEADER.pack(WIRE_VERSION, _RESPONSE, method, txid),
        _U16.pack(status),
        _U16.pack(len(responder)),
        responder,
        encode_address(observed),
        _U8.pack(len(token)),
        token,
        _U8.pack(len(nodes)),
    ]
    pack16 = _U16.pack
    for node in nodes:
        size = len(node)
        if not 0 < size <= MAX_RECORD_SIZE:
            raise InvalidInput(f"a response carries at most {MAX_NODES} node records")
        parts += (pack16(size), node)
    parts += (pack16(len(payload)), payload)
    return _sized(b"".join(parts))


def _check_common(method: int, txid: int, token: bytes, payload: bytes) -> None:
    if not 0 < method <= 0xFF:
        raise InvalidInput("method id is in [1, 255]")
    if not 0 <= txid <= MAX_U64:
        raise InvalidInput("txid out of range")
    if len(token) > MAX_TOKEN_SIZE:
        raise InvalidInput("token too long")
    if len(payload) > MAX_DATAGRAM_SIZE:
        raise InvalidInput("payload too large")


def _sized(datagram: bytes) -> bytes:
    if len(datagram) > MAX_DATAGRAM_SIZE:
        raise InvalidInput(f"datagram larger than {MAX_DATAGRAM_SIZE} bytes")
    return datagram


# -- decoding -------------------------------------------------------------------


def decode_message(data: bytes) -> Message:
    """Parse one datagram; raises :class:`~hyphal.errors.DecodeError` for anything malformed.

    Every datagram goes through here: each field is bounds-checked where it
    is read (:class:`~hyphal.codec.Reader`), and the whole datagram must be used.
    """
    if not isinstance(data, bytes):
        raise DecodeError("a datagram is bytes")
    if len(data) > MAX_DATAGRAM_SIZE:
        raise DecodeError("datagram larger than MAX_DATAGRAM_SIZE")
    r = Reader(data, "datagram")
    version, kind, method, txid = r.unpack(_HEADER, "header")
    if version != WIRE_VERSION:
        raise DecodeError(f"unknown wire version {version}")
    if method == 0:
        raise DecodeError("method 0 is reserved")
    message: Message
    if kind == _REQUEST:
        flags = r.u8("flags")
        if flags & ~(_HAS_TARGET | _HAS_SENDER):
            raise DecodeError(f"unknown request flags {flags:#x}")
        target = r.take(32, "target") if flags & _HAS_TARGET else None
        sender = r.bytes16(MAX_RECORD_SIZE, "sender record", min_size=1) if flags & _HAS_SENDER else None
        token = r.bytes8(MAX_TOKEN_SIZE, "token")
        payload = r.bytes16(MAX_DATAGRAM_SIZE, "payload")
        message = Request(method, txid, target, token, payload, sender)
    elif kind == _RESPONSE:
        status = r.u16("status")
        responder = r.bytes16(MAX_RECORD_SIZE, "responder record", min_size=1)
        observed = r.parse(decode_address)
        token = r.bytes8(MAX_TOKEN_SIZE, "token")
        count = r.u8("node count")
        if count > MAX_NODES:
            raise DecodeError(f"{count} node records; at most {MAX_NODES}")
        nodes = tuple([r.bytes16(MAX_RECORD_SIZE, "node record", min_size=1) for _ in range(count)])
        payload = r.bytes16(MAX_DATAGRAM_SIZE, "payload")
        message = Response(method, txid, responder, observed, status, token, nodes, payload)
    else:
        raise DecodeError(f"unknown message kind {kind}")
    r.expect_end()
    return message


# -- payloads of the built-in methods ---------------------------------------------


def encode_announces(announces: list[bytes]) -> bytes:
    """LOOKUP response payload: ``u8 count ‖ count * (u16le size ‖ announce)``."""
    if len(announces) > MAX_ANNOUNCES:
        raise InvalidInput(f"at most {MAX_ANNOUNCES} announces")
    return _U8.pack(len(announces)) + b"".join(_U16.pack(len(a)) + a for a in announces)


def decode_announces(payload: bytes) -> list[bytes]:
    r = Reader(payload, "announces")
    count = r.u8("announce count")
    if count > MAX_ANNOUNCES:
        raise DecodeError(f"{count} announces; at most {MAX_ANNOUNCES}")
    out = [r.bytes16(MAX_RECORD_SIZE, "announce", min_size=1) for _ in range(count)]
    r.expect_end()
    return out


def encode_optional_value(value: bytes | None) -> bytes:
    """GET_IMMUTABLE response payload: ``u8 present ‖ value``."""
    if value is None:
        return b"\x00"
    if len(value) > MAX_VALUE_SIZE:
        raise InvalidInput("value too large")
    return b"\x01" + value


def decode_optional_value(payload: bytes) -> bytes | None:
    if not payload or payload[0] > 1 or (payload[0] == 0 and len(payload) != 1):
        raise DecodeError("bad optional value")
    if payload[0] == 0:
        return None
    if len(payload) - 1 > MAX_VALUE_SIZE:
        raise DecodeError("value too large")
    return payload[1:]


def encode_mutable_put(signed_value: bytes, cas: int | None) -> bytes:
    """PUT_MUTABLE request payload: ``u8 has_cas ‖ [u64le cas] ‖ signed_value``."""
    if cas is None:
        return b"\x00" + signed_value
    if not 0 <= cas <= MAX_U64:
        raise InvalidInput("cas out of range")
    return b"\x01" + _U64.pack(cas) + signed_value


def decode_mutable_put(payload: bytes) -> tuple[bytes, int | None]:
    if not payload or payload[0] > 1:
        raise DecodeError("bad PUT_MUTABLE payload")
    if payload[0] == 0:
        return payload[1:], None
    if len(payload) < 9:
        raise DecodeError("PUT_MUTABLE payload truncated")
    cas: int = _U64.unpack_from(payload, 1)[0]
    return payload[9:], cas


def encode_seq(seq: int) -> bytes:
    """The payload of SEQ_TOO_OLD / CAS_MISMATCH: ``u64le seq``."""
    return _U64.pack(seq)


def decode_seq(payload: bytes) -> int:
    if len(payload) != 8:
        raise DecodeError("a seq payload is 8 bytes")
    seq: int = _U64.unpack(payload)[0]
    return seq


__all__ = [
    "FIRST_EXTENSION_METHOD",
    "MAX_ANNOUNCES",
    "MAX_DATAGRAM_SIZE",
    "MAX_NODES",
    "MAX_RECORD_SIZE",
    "MAX_TOKEN_SIZE",
    "MAX_VALUE_SIZE",
    "WIRE_VERSION",
    "Kind",
    "Message",
    "Method",
    "Request",
    "Response",
    "Status",
    "decode_announces",
    "decode_message",
    "decode_mutable_put",
    "decode_optional_value",
    "decode_seq",
    "encode_announces",
    "encode_mutable_put",
    "encode_optional_value",
    "encode_seq",
]
