"""160-bit mainline node ids: XOR order through the Rust core, and BEP 42's id-from-IP rule.

``hyphal._core``'s XOR functions take 32-byte ids (hyphal's own DHT is 256-bit).
A 20-byte id padded with 12 zero bytes keeps its XOR distance to every padded
id in the same order, and its shared-prefix length too (below 160 bits), so
the mainline code pads and reuses the core instead of a second XOR sort.

BEP 42 ties a node id to its IP: the first 21 bits are ``crc32c((ip & mask) |
r << 29)``'s top bits, the last byte holds ``r``. We follow it when our own
address is public, so nodes that enforce it keep us in their tables.
"""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Sequence

from hyphal import extras
from hyphal._core import bucket_index as _bucket_index
from hyphal.errors import InvalidInput
from hyphal.xor import ID_SIZE, xor_sort

NODE_ID_SIZE = 20
ID_BITS = 8 * NODE_ID_SIZE
_PAD = bytes(ID_SIZE - NODE_ID_SIZE)
_V4_MASK = bytes([0x03, 0x0F, 0x3F, 0xFF])
_V6_MASK = bytes([0x01, 0x03, 0x07, 0x0F, 0x1F, 0x3F, 0x7F, 0xFF])


def pad(node_id: bytes) -> bytes:
    """A 20-byte id as the 32-byte id the XOR core sorts (zero-padded: same order, same prefix)."""
    if len(node_id) != NODE_ID_SIZE:
        raise InvalidInput("a mainline id is 20 bytes")
    return node_id + _PAD


def sort_by_distance(target: bytes, ids: Sequence[bytes]) -> list[int]:
    """Positions of ``ids``, nearest ``target`` first (XOR, sorted in Rust)."""
    if not ids:
        return []
    return xor_sort(pad(target), b"".join(pad(i) for i in ids))


def bucket_index(own: bytes, other: bytes) -> int:
    """Leading bits ``own`` and ``other`` share (160 for equal ids)."""
    return min(ID_BITS, _bucket_index(pad(own), pad(other)))


def random_id(rng: random.Random) -> bytes:
    return rng.randbytes(NODE_ID_SIZE)


def _crc32c(data: bytes) -> int:
    crc = extras.require("mainline", "google_crc32c", "BEP 42 node ids")
    return int(crc.value(data))


def bep42_id(ip: str, rng: random.Random, rand: int | None = None) -> bytes:
    """A node id valid for ``ip`` under BEP 42; ``rand`` (0 to 255) is the last byte, random if None."""
    addr = ipaddress.ip_address(ip)
    r = rng.randrange(256) if rand is None else rand
    if not 0 <= r <= 255:
        raise InvalidInput("rand is one byte")
    packed = addr.packed
    mask = _V4_MASK if addr.version == 4 else _V6_MASK
    masked = bytearray(x & m for x, m in zip(packed[: len(mask)], mask, strict=True))
    masked[0] |= (r & 0x7) << 5
    crc = _crc32c(bytes(masked))
    head = bytes([(crc >> 24) & 0xFF, (crc >> 16) & 0xFF, ((crc >> 8) & 0xF8) | rng.randrange(8)])
    return head + rng.randbytes(16) + bytes([r])


def bep42_ok(node_id: bytes, ip: str) -> bool:
    """``node_id`` follows BEP 42 for ``ip`` (its first 21 bits match the CRC of the masked IP)."""
    if len(node_id) != NODE_ID_SIZE:
        return False
    expected = bep42_id(ip, random.Random(0), node_id[-1])
    return expected[:2] == node_id[:2] and (expected[2] & 0xF8) == (node_id[2] & 0xF8)


def is_public(ip: str) -> bool:
    """Whether ``ip`` is a global address (what BEP 42 and BEP 43's default care about)."""
    try:
        return ipaddress.ip_address(ip).is_global
    except ValueError:
        return False


def choose_node_id(ip: str, rng: random.Random) -> bytes:
    """Our id: BEP 42's for a public ``ip``, random otherwise (BEP 42 exempts local addresses)."""
    return bep42_id(ip, rng) if is_public(ip) else random_id(rng)


__all__ = [
    "ID_BITS",
    "NODE_ID_SIZE",
    "bep42_id",
    "bep42_ok",
    "bucket_index",
    "choose_node_id",
    "is_public",
    "pad",
    "random_id",
    "sort_by_distance",
]
