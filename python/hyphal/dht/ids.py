"""256-bit ids of the DHT key space (docs/PROTOCOL.md §11.1).

A node's id is ``BLAKE3(public_key)``; an immutable record's key is
``BLAKE3(value)``; a mutable record's key is its signed value id
(:func:`hyphal.feed.value_feed.value_id`); a topic is any 32-byte
discovery key.
"""

from __future__ import annotations

import random

from hyphal import _core
from hyphal.errors import InvalidInput
from hyphal.xor import ID_SIZE, bucket_index

ID_BITS = 8 * ID_SIZE


def node_id(public_key: bytes) -> bytes:
    """``BLAKE3(public_key)``: a node's place in the key space."""
    if len(public_key) != 32:
        raise InvalidInput("a public key is 32 bytes")
    return _core.blake3(public_key)


def immutable_key(value: bytes) -> bytes:
    """``BLAKE3(value)``: where an immutable record lives (equals ``b3sum``)."""
    return _core.blake3(value)


def random_id_with_prefix(own: bytes, shared: int, rng: random.Random) -> bytes:
    """A random id sharing exactly ``shared`` leading bits with ``own`` (``shared < 256``).

    Used to refresh the bucket of ids at that prefix length.
    """
    if not 0 <= shared < ID_BITS or len(own) != ID_SIZE:
        raise InvalidInput("shared must be in [0, 256) and own a 32-byte id")
    own_int = int.from_bytes(own, "big")
    low_bits = ID_BITS - shared - 1
    flipped = (own_int >> low_bits) ^ 1  # the first bit after the shared prefix differs
    value = (flipped << low_bits) | rng.getrandbits(low_bits) if low_bits else flipped
    out = value.to_bytes(ID_SIZE, "big")
    assert bucket_index(own, out) == shared
    return out


__all__ = ["ID_BITS", "ID_SIZE", "immutable_key", "node_id", "random_id_with_prefix"]
