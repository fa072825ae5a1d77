"""KRPC, the mainline DHT's wire format (BEP 5): bencoded queries, responses and errors.

This is the one place mainline datagrams are encoded and decoded. Bencode is
``fastbencode`` (the ``mainline`` extra), loaded through
:func:`hyphal.extras.require` on first use. Decoding checks the shape every
later layer relies on (a dict, a transaction id, a 20-byte sender id, the
argument dict) and raises :class:`~hyphal.errors.DecodeError` otherwise;
fields of a method are checked by the typed accessors (:func:`get_bytes`,
:func:`get_int`) where they are read.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from hyphal import extras
from hyphal.errors import DecodeError, InvalidInput
from hyphal.mainline.ids import NODE_ID_SIZE

Addr = tuple[str, int]
MAX_DATAGRAM_SIZE = 1500
"""Larger datagrams are dropped unread (a BEP 44 put with a 1000-byte value fits well under it)."""
MAX_TID_SIZE = 16
COMPACT_NODE_SIZE = NODE_ID_SIZE + 6
_PORT = struct.Struct(">H")

# BEP 5 / BEP 44 error codes
GENERIC_ERROR = 201
SERVER_ERROR = 202
PROTOCOL_ERROR = 203
METHOD_UNKNOWN = 204
MESSAGE_TOO_BIG = 205
INVALID_SIGNATURE = 206
SALT_TOO_BIG = 207
CAS_MISMATCH = 301
SEQ_TOO_OLD = 302

METHODS = frozenset({"ping", "find_node", "get_peers", "announce_peer", "get", "put"})

_bencode_module: ModuleType | None = None


def _bencode() -> ModuleType:
    global _bencode_module
    if _bencode_module is None:
        _bencode_module = extras.require("mainline", "fastbencode", "the mainline DHT")
    return _bencode_module


def bencode(value: object) -> bytes:
    try:
        return bytes(_bencode().bencode(value))
    except (TypeError, ValueError) as e:
        raise InvalidInput(f"cannot bencode this value: {e}") from None


def bdecode(data: bytes) -> Any:
    """One bencoded value, exactly (no trailing bytes); :class:`DecodeError` otherwise."""
    try:
        return _bencode().bdecode(data)
    except (ValueError, TypeError, KeyError, IndexError, RecursionError) as e:
        raise DecodeError(f"not bencode: {e}") from None


def bencached(encoded: bytes) -> object:
    """An already-bencoded value to embed as is (a BEP 44 ``v`` inside the signed string)."""
    return _bencode().Bencached(encoded)


@dataclass(frozen=True, slots=True)
class Query:
    tid: bytes
    method: str
    args: dict[bytes, Any]
    sender: bytes
    read_only: bool = False
    """BEP 43: the sender is read-only; it must not enter routing tables."""


@dataclass(frozen=True, slots=True)
class Response:
    tid: bytes
    values: dict[bytes, Any]
    sender: bytes
    observed: Addr | None = None
    """Where the responder saw us (BEP 42's ``ip`` field)."""


@dataclass(frozen=True, slots=True)
class KrpcError:
    tid: bytes
    code: int
    message: str


Message = Query | Response | KrpcError


def decode_message(data: bytes) -> Message:
    if len(data) > MAX_DATAGRAM_SIZE:
        raise DecodeError("datagram too large")
    msg = bdecode(data)
    if not isinstance(msg, dict):
        raise DecodeError("a KRPC message is a dict")
    tid = msg.get(b"t")
    if not isinstance(tid, bytes) or len(tid) > MAX_TID_SIZE:
        raise DecodeError("missing or oversized transaction id")
    kind = msg.get(b"y")
    if kind == b"q":
        method = msg.get(b"q")
        args = msg.get(b"a")
        if not isinstance(method, bytes) or not isinstance(args, dict):
            raise DecodeError("a query needs q and a")
        try:
            name = method.decode("ascii")
        except UnicodeDecodeError:
            raise DecodeError("a method name is ASCII") from None
        ro = msg.get(b"ro", 0)
        return Query(tid, name, args, get_bytes(args, b"id", size=NODE_ID_SIZE), ro == 1)
    if kind == b"r":
        values = msg.get(b"r")
        if not isinstance(values, dict):
            raise DecodeError("a response needs r")
        observed = None
        ip = msg.get(b"ip")
        if isinstance(ip, bytes) and len(ip) in (6, 18):
            observed = decode_compact_addr(ip)
        return Response(tid, values, get_bytes(values, b"id", size=NODE_ID_SIZE), observed)
    if kind == b"e":
        err = msg.get(b"e")
        if (
            not isinstance(err, list)
            or len(err) < 2
            or not isinstance(err[0], int)
            or not isinstance(err[1], bytes)
        ):
            raise DecodeError("an error is [code, message]")
        return KrpcError(tid, err[0], err[1][:200].decode("utf-8", "replace"))
    raise DecodeError("y is not q, r or e")


def encode_query(tid: bytes, method: str, args: dict[bytes, Any], *, read_only: bool = False) -> bytes:
    msg: dict[bytes, Any] = {b"t": tid, b"y": b"q", b"q": method.encode("ascii"), b"a": args}
    if read_only:
        msg[b"ro"] = 1
    return bencode(msg)


def encode_response(tid: bytes, values: dict[bytes, Any], observed: Addr | None = None) -> bytes:
    msg: dict[bytes, Any] = {b"t": tid, b"y": b"r", b"r": values}
    if observed is not None:
        msg[b"ip"] = encode_compact_addr(observed)
    return bencode(msg)


def encode_error(tid: bytes, code: int, message: str) -> bytes:
    return bencode({b"t": tid, b"y": b"e", b"e": [code, message.encode("utf-8")]})


# -- typed field access ----------------------------------------------------------------------


def get_bytes(
    d: dict[bytes, Any], key: bytes, *, size: int | None = None, max_size: int | None = None
) -> bytes:
    value = d.get(key)
    if not isinstance(value, bytes):
        raise DecodeError(f"{key.decode()} is missing or not a string")
    if size is not None and len(value) != size:
        raise DecodeError(f"{key.decode()} is not {size} bytes")
    if max_size is not None and len(value) > max_size:
        raise DecodeError(f"{key.decode()} is over {max_size} bytes")
    return value


def get_int(d: dict[bytes, Any], key: bytes, *, low: int = 0, high: int = 2**63 - 1) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise DecodeError(f"{key.decode()} is missing or not an integer in [{low}, {high}]")
    return value


def optional_int(d: dict[bytes, Any], key: bytes) -> int | None:
    return None if key not in d else get_int(d, key)


# -- compact formats (BEP 5) -----------------------------------------------------------------


def encode_compact_addr(addr: Addr) -> bytes:
    host, port = addr
    try:
        packed = ipaddress.ip_address(host).packed
    except ValueError:
        raise InvalidInput(f"{host!r} is not an IP address") from None
    return packed + _PORT.pack(port)


def decode_compact_addr(raw: bytes) -> Addr:
    if len(raw) not in (6, 18):
        raise DecodeError("a compact address is 6 or 18 bytes")
    port = _PORT.unpack_from(raw, len(raw) - 2)[0]
    return str(ipaddress.ip_address(raw[:-2])), port


def encode_nodes(nodes: list[tuple[bytes, Addr]]) -> bytes:
    """IPv4 nodes as BEP 5's ``nodes`` string (26 bytes each); IPv6 ones are left out."""
    out = bytearray()
    for node_id, addr in nodes:
        if ":" not in addr[0]:
            out += node_id + encode_compact_addr(addr)
    return bytes(out)


def decode_nodes(raw: object) -> list[tuple[bytes, Addr]]:
    if not isinstance(raw, bytes) or len(raw) % COMPACT_NODE_SIZE:
        raise DecodeError("nodes is not a whole number of 26-byte entries")
    out = []
    for i in range(0, len(raw), COMPACT_NODE_SIZE):
        entry = raw[i : i + COMPACT_NODE_SIZE]
        addr = decode_compact_addr(entry[NODE_ID_SIZE:])
        if addr[1] != 0:
            out.append((entry[:NODE_ID_SIZE], addr))
    return out


def decode_peers(raw: object) -> list[Addr]:
    if not isinstance(raw, list):
        raise DecodeError("values is not a list")
    out = []
    for item in raw:
        if not isinstance(item, bytes) or len(item) not in (6, 18):
            raise DecodeError("a peer is a 6- or 18-byte compact address")
        addr = decode_compact_addr(item)
        if addr[1] != 0:
            out.append(addr)
    return out


__all__ = [
    "CAS_MISMATCH",
    "INVALID_SIGNATURE",
    "MAX_DATAGRAM_SIZE",
    "MESSAGE_TOO_BIG",
    "METHODS",
    "METHOD_UNKNOWN",
    "PROTOCOL_ERROR",
    "SALT_TOO_BIG",
    "SEQ_TOO_OLD",
    "Addr",
    "KrpcError",
    "Message",
    "Query",
    "Response",
    "bdecode",
    "bencached",
    "bencode",
    "decode_compact_addr",
    "decode_message",
    "decode_nodes",
    "decode_peers",
    "encode_compact_addr",
    "encode_error",
    "encode_nodes",
    "encode_query",
    "encode_response",
    "get_bytes",
    "get_int",
    "optional_int",
]
