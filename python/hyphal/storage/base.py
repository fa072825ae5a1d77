"""The storage interface feeds and signed values are written against.

A backend persists, per feed (addressed by its 32-byte feed key): the
manifest, the latest verified head, blocks, Merkle nodes and bitfield pages;
and, per signed value id, the latest signed value. It stores bytes and checks
nothing cryptographic: verifying is the caller's job, done *before* a write.

Every :meth:`Storage.write_feed` is one atomic transaction: after a crash
either all of it is there or none of it is. Backends are used from one
thread at a time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from typing_extensions import Buffer

from hyphal.merkle import TreeNode


@dataclass(frozen=True, slots=True)
class FeedRecord:
    """What a backend keeps about a feed besides its blocks, nodes and bitfield."""

    key: bytes
    manifest: bytes  # the encoded manifest; its hash is ``key``
    encrypted: bool  # blocks are sealed (feed/encryption.py); the key is never stored
    head: bytes | None  # the encoded latest verified head, None before the first one


@dataclass(slots=True)
class FeedWrite:
    """One atomic change to a feed, applied in this order.

    1. ``truncate_from = n``: delete blocks ``>= n`` and every node that is not
       wholly inside blocks ``[0, n)`` (see :func:`nodes_reaching`).
    2. Store ``blocks`` at ``block_start, block_start + 1, …`` (kept if present).
    3. Store ``nodes`` (replacing any at the same index).
    4. Replace each bitfield page in ``bitfield``; an empty value deletes the page.
    5. Replace the head when ``head`` is given.
    """

    truncate_from: int | None = None
    block_start: int = 0
    blocks: Sequence[Buffer] = ()
    nodes: Sequence[TreeNode] = ()
    bitfield: Mapping[int, bytes] = field(default_factory=dict)
    head: bytes | None = None


def nodes_reaching(length: int) -> tuple[int, list[int]]:
    """The nodes a truncation to ``length`` deletes: every flat index ``>= 2 * length``, plus these.

    A node covering blocks ``[s, e)`` survives only if ``e <= length``. Nodes
    at or right of leaf ``2 * length`` all go; the others that reach past
    ``length`` are the (at most 62) ancestors straddling the cut, listed here.
    """
    straddling = []
    for depth in range(1, 63):
        offset = length >> depth
        first_block = offset << depth
        if first_block < length:  # the node at this depth holding block `length` starts before it
            index = (offset << (depth + 1)) | ((1 << depth) - 1)
            if index < 2 * length:
                straddling.append(index)
    return 2 * length, straddling


class Storage(Protocol):
    """A place to keep feeds and signed values (see the module docstring)."""

    def create_feed(self, record: FeedRecord) -> None:
        """Add a feed; :class:`~hyphal.errors.InvalidInput` if its key is already stored."""

    def load_feed(self, key: bytes) -> FeedRecord | None: ...

    def feed_keys(self) -> list[bytes]: ...

    def delete_feed(self, key: bytes) -> None:
        """Remove a feed and everything stored for it (no-op when absent)."""

    def write_feed(self, key: bytes, write: FeedWrite) -> None:
        """Apply ``write`` atomically; on error nothing of it is stored."""

    def get_block(self, key: bytes, index: int) -> bytes | None: ...

    def get_blocks(self, key: bytes, start: int, end: int) -> dict[int, bytes]:
        """The stored blocks of ``[start, end)`` by index (missing ones absent)."""

    def get_nodes(self, key: bytes, indexes: Sequence[int]) -> dict[int, TreeNode]:
        """The stored nodes among ``indexes`` by flat index (missing ones absent)."""

    def bitfield_pages(self, key: bytes) -> list[tuple[object, object]]:
        """Raw ``(page, bits)`` rows, checked by the caller (they come from disk)."""

    def get_signed_value(self, value_id: bytes) -> bytes | None: ...

    def put_signed_value(self, value_id: bytes, seq: int, encoded: bytes) -> bool:
        """Store ``encoded`` only if no value with ``seq`` or higher is stored; True if stored."""

    def close(self) -> None: ...


__all__ = ["FeedRecord", "FeedWrite", "Storage", "nodes_reaching"]
