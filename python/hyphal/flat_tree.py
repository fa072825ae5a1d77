"""Flat-tree (in-order) index math: leaves are even, parents odd.

See docs/PROTOCOL.md §2. Every function raises
:class:`hyphal.errors.InvalidInput` for an index outside ``[0, 2^63)``.
"""

from __future__ import annotations

from hyphal._core import ft_block_range as block_range
from hyphal._core import ft_children as children
from hyphal._core import ft_depth as depth
from hyphal._core import ft_full_roots as full_roots
from hyphal._core import ft_index as index
from hyphal._core import ft_offset as offset
from hyphal._core import ft_parent as parent
from hyphal._core import ft_sibling as sibling
from hyphal._core import ft_span as span

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
