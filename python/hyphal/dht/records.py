"""Signed DHT records: node records and topic announces (docs/PROTOCOL.md §11.2-11.3).

Mutable records are the signed values of :mod:`hyphal.feed.value_feed`
(BEP 44 semantics, one shared format and signature); immutable records are
plain bytes keyed by their BLAKE3 hash. Everything here decodes strictly:
malformed bytes raise :class:`~hyphal.errors.DecodeError` and nothing else,
and a signature that does not verify raises
:class:`~hyphal.errors.SignatureError`.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TypeAlias

from hyphal import _core
from hyphal.dht.ids import node_id
from hyphal.errors import DecodeError, InvalidInput, SignatureError
from hyphal.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair, namespaced_message, require_signature

Addr: TypeAlias = tuple[str, int]
"""A UDP address: (IPv4 or IPv6 literal, port)."""

RECORD_VERSION = 1
MAX_ADDRESSES = 4
MAX_U64 = 2**64 - 1
MAX_SEQ = 2**63 - 1
MAX_ANNOUNCE_TTL = 24 * 3600
"""Longest life an announce may ask for, in seconds."""
NODE_RECORD_NAMESPACE: bytes = _core.derive_key("hyphal 2026-11 dht node record", b"")
ANNOUNCE_NAMESPACE: bytes = _core.derive_key("hyphal 2026-11 dht announce", b"")

_U16 = struct.Struct("<H")
_U64 = struct.Struct("<Q")
_ANNOUNCE_TIMES = struct.Struct("<QI")
_FAMILY_SIZE = {4: 4, 6: 16}


# -- addresses -------------------------------------------------------------------


@lru_cache(maxsize=65536)
def encode_address(addr: Addr) -> bytes:
    """``u8 family (4 | 6) ‖ ip[4 | 16] ‖ u16le port``."""
    host, port = addr
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        raise InvalidInput(f"not an IP literal: {host!r}") from None
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 0xFFFF:
        raise InvalidInput("port must be in [0, 65535]")
    return bytes((ip.version,)) + ip.packed + _U16.pack(port)


@lru_cache(maxsize=65536)
def _decode_address_bytes(raw: bytes) -> Addr:
    family = raw[0]
    ip = ipaddress.ip_address(raw[1:-2])
    if ip.version != family:  # pragma: no cover - sizes make this impossible
        raise DecodeError("address family mismatch")
    return (str(ip), _U16.unpack_from(raw, len(raw) - 2)[0])


def decode_address(raw: bytes | memoryview, offset: int = 0) -> tuple[Addr, int]:
    """Parse one address at ``offset``: (address, offset after it)."""
    if offset >= len(raw):
        raise DecodeError("address truncated")
    size = _FAMILY_SIZE.get(raw[offset])
    if size is None:
        raise DecodeError(f"unknown address family {raw[offset]}")
    end = offset + 1 + size + 2
    if end > len(raw):
        raise DecodeError("address truncated")
    return _decode_address_bytes(bytes(raw[offset:end])), end


def _encode_addresses(addresses: tuple[Addr, ...]) -> bytes:
    if not 1 <= len(addresses) <= MAX_ADDRESSES:
        raise InvalidInput(f"a record lists 1 to {MAX_ADDRESSES} addresses")
    if len(set(addresses)) != len(addresses):
        raise InvalidInput("a record lists each address once")
    return bytes((len(addresses),)) + b"".join(encode_address(a) for a in addresses)


def _decode_addresses(raw: bytes, offset: int) -> tuple[tuple[Addr, ...], int]:
    if offset >= len(raw):
        raise DecodeError("record truncated")
    count = raw[offset]
    if not 1 <= count <= MAX_ADDRESSES:
        raise DecodeError(f"a record lists 1 to {MAX_ADDRESSES} addresses, not {count}")
    offset += 1
    addresses = []
    for _ in range(count):
        addr, offset = decode_address(raw, offset)
        addresses.append(addr)
    if len(set(addresses)) != count:
        raise DecodeError("a record lists an address twice")
    return tuple(addresses), offset


def _check_u(value: int, limit: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise InvalidInput(f"{what} out of range")


# -- node records ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node's signed self-description: its key, where to reach it, and a version ``seq``.

    ``id`` is ``BLAKE3(public_key)``. A newer ``seq`` replaces an older record
    of the same key. Several nodes may list the same IP (other ports).
    """

    public_key: bytes
    seq: int
    addresses: tuple[Addr, ...]
    signature: bytes
    id: bytes = field(init=False, repr=False, compare=False)
    encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_SIZE:
            raise InvalidInput("public key is 32 bytes")
        _check_u(self.seq, MAX_SEQ, "node record seq")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise InvalidInput("signature is 64 bytes")
        fields = self._fields()
        object.__setattr__(self, "id", node_id(self.public_key))
        object.__setattr__(self, "encoded", bytes((RECORD_VERSION,)) + fields + self.signature)

    def _fields(self) -> bytes:
        return self.public_key + _U64.pack(self.seq) + _encode_addresses(tuple(self.addresses))

    @classmethod
    def sign(cls, keypair: KeyPair, seq: int, addresses: tuple[Addr, ...]) -> NodeRecord:
        unsigned = cls(keypair.public_key, seq, addresses, bytes(SIGNATURE_SIZE))
        return cls(keypair.public_key, seq, addresses, keypair.sign(unsigned.signable()))

    def signable(self) -> bytes:
        """``NODE_RECORD_NAMESPACE ‖ public_key ‖ u64le seq ‖ u8 count ‖ addresses``."""
        return namespaced_message(NODE_RECORD_NAMESPACE, self._fields())

    def verify(self) -> None:
        require_signature(self.public_key, self.signable(), self.signature)

    def encode(self) -> bytes:
        return self.encoded

    @staticmethod
    def decode(data: bytes | memoryview) -> NodeRecord:
        """Parse and verify a node record (cached: the same bytes verify once)."""
        return _decode_node_record(bytes(data))


@lru_cache(maxsize=65536)
def _decode_node_record(raw: bytes) -> NodeRecord:
    size = 1 + PUBLIC_KEY_SIZE + _U64.size
    if len(raw) < size + 1 + SIGNATURE_SIZE:
        raise DecodeError("node record: truncated")
    if raw[0] != RECORD_VERSION:
        raise DecodeError(f"node record: unknown version {raw[0]}")
    public_key = raw[1 : 1 + PUBLIC_KEY_SIZE]
    (seq,) = _U64.unpack_from(raw, 1 + PUBLIC_KEY_SIZE)
    addresses, end = _decode_addresses(raw, size)
    if len(raw) != end + SIGNATURE_SIZE:
        raise DecodeError("node record: length does not match its addresses")
    try:
        record = NodeRecord(public_key, seq, addresses, raw[end:])
    except InvalidInput as e:
        raise DecodeError(f"node record: {e}") from None
    record.verify()
    return record


# -- announces -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AnnounceRecord:
    """A signed "peer ``public_key`` serves ``topic`` at ``addresses``" for ``ttl`` seconds.

    ``issued_at`` is the announcer's UNIX time in seconds. Holders keep the
    newest announce per (topic, public key) until ``issued_at + ttl``, so a
    replayed old announce is already expired.
    """

    topic: bytes
    public_key: bytes
    issued_at: int
    ttl: int
    addresses: tuple[Addr, ...]
    signature: bytes
    encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.topic, bytes) or len(self.topic) != 32:
            raise InvalidInput("topic is 32 bytes")
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_SIZE:
            raise InvalidInput("public key is 32 bytes")
        _check_u(self.issued_at, MAX_SEQ, "announce time")
        if (
            isinstance(self.ttl, bool)
            or not isinstance(self.ttl, int)
            or not 1 <= self.ttl <= MAX_ANNOUNCE_TTL
        ):
            raise InvalidInput(f"announce ttl must be in [1, {MAX_ANNOUNCE_TTL}] seconds")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise InvalidInput("signature is 64 bytes")
        object.__setattr__(self, "encoded", bytes((RECORD_VERSION,)) + self._fields() + self.signature)

    def _fields(self) -> bytes:
        return (
            self.topic
            + self.public_key
            + _ANNOUNCE_TIMES.pack(self.issued_at, self.ttl)
            + _encode_addresses(tuple(self.addresses))
        )

    @property
    def expires(self) -> int:
        return self.issued_at + self.ttl

    @classmethod
    def sign(
        cls, keypair: KeyPair, topic: bytes, issued_at: int, ttl: int, addresses: tuple[Addr, ...]
    ) -> AnnounceRecord:
        unsigned = cls(topic, keypair.public_key, issued_at, ttl, addresses, bytes(SIGNATURE_SIZE))
        return cls(topic, keypair.public_key, issued_at, ttl, addresses, keypair.sign(unsigned.signable()))

    def signable(self) -> bytes:
        """``ANNOUNCE_NAMESPACE ‖`` the encoding without its version byte and signature."""
        return namespaced_message(ANNOUNCE_NAMESPACE, self._fields())

    def verify(self) -> None:
        require_signature(self.public_key, self.signable(), self.signature)

    def encode(self) -> bytes:
        return self.encoded

    @staticmethod
    def decode(data: bytes | memoryview) -> AnnounceRecord:
        """Parse and verify an announce."""
        return _decode_announce(bytes(data))


@lru_cache(maxsize=16384)
def _decode_announce(raw: bytes) -> AnnounceRecord:
    fixed = 1 + 32 + PUBLIC_KEY_SIZE + _ANNOUNCE_TIMES.size
    if len(raw) < fixed + 1 + SIGNATURE_SIZE:
        raise DecodeError("announce: truncated")
    if raw[0] != RECORD_VERSION:
        raise DecodeError(f"announce: unknown version {raw[0]}")
    issued_at, ttl = _ANNOUNCE_TIMES.unpack_from(raw, 1 + 32 + PUBLIC_KEY_SIZE)
    addresses, end = _decode_addresses(raw, fixed)
    if len(raw) != end + SIGNATURE_SIZE:
        raise DecodeError("announce: length does not match its addresses")
    try:
        record = AnnounceRecord(raw[1:33], raw[33:65], issued_at, ttl, addresses, raw[end:])
    except InvalidInput as e:
        raise DecodeError(f"announce: {e}") from None
    record.verify()
    return record


__all__ = [
    "ANNOUNCE_NAMESPACE",
    "MAX_ADDRESSES",
    "MAX_ANNOUNCE_TTL",
    "NODE_RECORD_NAMESPACE",
    "Addr",
    "AnnounceRecord",
    "NodeRecord",
    "SignatureError",
    "decode_address",
    "encode_address",
]
