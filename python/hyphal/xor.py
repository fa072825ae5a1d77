"""XOR distance over 256-bit ids, as used by the Kademlia DHT."""

from __future__ import annotations

from collections.abc import Sequence

from typing_extensions import Buffer

from hyphal import _core
from hyphal._core import bucket_index, xor_compare, xor_distance
from hyphal.errors import InvalidInput

ID_SIZE = 32


def _as_id_buffer(ids: Buffer | Sequence[bytes]) -> Buffer:
    if isinstance(ids, (bytes, bytearray, memoryview)):
        return ids
    if isinstance(ids, Sequence):
        if any(len(i) != ID_SIZE for i in ids):
            raise InvalidInput(f"every id must be {ID_SIZE} bytes")
        return b"".join(ids)
    return ids


def xor_closest(target: Buffer, ids: Buffer | Sequence[bytes], k: int) -> list[int]:
    """Positions of the ``k`` ids nearest ``target``, nearest first.

    ``ids`` is one contiguous buffer of 32-byte ids (the fast path, no copy)
    or a sequence of 32-byte ``bytes``.
    """
    return _core.xor_closest(target, _as_id_buffer(ids), k)


def xor_sort(target: Buffer, ids: Buffer | Sequence[bytes]) -> list[int]:
    """Positions of every id, nearest ``target`` first."""
    return _core.xor_sort(target, _as_id_buffer(ids))


__all__ = ["ID_SIZE", "bucket_index", "xor_closest", "xor_compare", "xor_distance", "xor_sort"]
