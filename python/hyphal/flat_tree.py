"""Flat-tree (in-order) index math: leaves are even, parents odd.

See docs/PROTOCOL.md §2. Every function raises
:class:`hyphal.errors.InvalidInput` for an index outside ``[0, 2^63)``.
"""

from __future__ import annotations

from hyphal._core.flat_tree import (
    block_range,
    children,
    depth,
    full_roots,
    index,
    offset,
    parent,
    sibling,
    span,
)

__all__ = [
    "block_range",
    "children",
    "depth",
    "full_roots",
    "index",
    "offset",
    "parent",
    "sibling",
    "span",
]
