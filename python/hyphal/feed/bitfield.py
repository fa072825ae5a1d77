"""Which blocks of a feed this replica holds, in pages that persist one by one.

A sparse replica may hold any subset of blocks. The bitfield is split into
pages of :data:`PAGE_BITS` blocks so an append rewrites one small row, not
the whole map. Changes are computed first and applied after the storage
transaction commits, so a failed write leaves the in-memory view unchanged.

Page encoding: ``PAGE_BYTES`` bytes, block ``page * PAGE_BITS + i`` is bit
``i % 8`` (least significant first) of byte ``i // 8``.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping

from hyphal.errors import DecodeError, InvalidInput
from hyphal.merkle import MAX_LENGTH

PAGE_BITS = 32768
PAGE_BYTES = PAGE_BITS // 8
MAX_PAGE = MAX_LENGTH // PAGE_BITS
_FULL = (1 << PAGE_BITS) - 1

PageChanges = dict[int, int]
"""New page values by page number; 0 means the page is now empty (delete it)."""


def encode_page(bits: int) -> bytes:
    return bits.to_bytes(PAGE_BYTES, "little")


def decode_page(page: object, data: object) -> tuple[int, int]:
    """Check one stored page row; raises :class:`DecodeError` if it is not a page."""
    if isinstance(page, bool) or not isinstance(page, int) or not 0 <= page <= MAX_PAGE:
        raise DecodeError(f"bitfield: bad page number {page!r}")
    if not isinstance(data, bytes) or len(data) != PAGE_BYTES:
        raise DecodeError(f"bitfield: page {page} is not {PAGE_BYTES} bytes")
    return page, int.from_bytes(data, "little")


class Bitfield:
    """A set of block indexes in ``[0, 2^62)``, stored as pages of bits."""

    __slots__ = ("_order", "_pages")

    def __init__(self, pages: Iterable[tuple[int, int]] = ()) -> None:
        self._pages: dict[int, int] = {p: bits for p, bits in pages if bits}
        self._order: list[int] = sorted(self._pages)  # page numbers, to skip empty stretches

    @classmethod
    def from_rows(cls, rows: Iterable[tuple[object, object]]) -> Bitfield:
        return cls(decode_page(page, data) for page, data in rows)

    def has(self, index: int) -> bool:
        page, bit = divmod(index, PAGE_BITS)
        return bool((self._pages.get(page, 0) >> bit) & 1)

    def has_range(self, start: int, end: int) -> bool:
        """True when every block of ``[start, end)`` is present (an empty range is)."""
        return start >= end or self.next_missing(start, end) == end

    def next_present(self, start: int, end: int) -> int:
        """The first present index in ``[start, end)``, or ``end``."""
        i = start
        while i < end:
            page, bit = divmod(i, PAGE_BITS)
            bits = self._pages.get(page, 0) >> bit
            if bits:
                return min(end, i + (bits & -bits).bit_length() - 1)
            # Jump to the next page that has any bit set.
            at = bisect.bisect_right(self._order, page)
            if at == len(self._order):
                return end
            i = self._order[at] * PAGE_BITS
        return end

    def next_missing(self, start: int, end: int) -> int:
        """The first missing index in ``[start, end)``, or ``end``."""
        i = start
        while i < end:
            page, bit = divmod(i, PAGE_BITS)
            holes = (~self._pages.get(page, 0) & _FULL) >> bit
            if holes:
                return min(end, i + (holes & -holes).bit_length() - 1)
            i = (page + 1) * PAGE_BITS
        return end

    def missing(self, start: int, end: int) -> list[tuple[int, int]]:
        """The missing blocks of ``[start, end)`` as sorted, disjoint half-open ranges."""
        ranges = []
        i = start
        while i < end:
            hole = self.next_missing(i, end)
            if hole == end:
                break
            i = self.next_present(hole, end)
            ranges.append((hole, i))
        return ranges

    def copy(self) -> Bitfield:
        return Bitfield(self._pages.items())

    def count(self) -> int:
        return sum(bits.bit_count() for bits in self._pages.values())

    # -- changes: compute, persist, then apply -----------------------------------------

    def set_range_changes(self, start: int, end: int) -> PageChanges:
        """Page values after setting ``[start, end)``; pages that do not change are left out."""
        _check_range(start, end)
        changes: PageChanges = {}
        i = start
        while i < end:
            page, bit = divmod(i, PAGE_BITS)
            stop = min(end, (page + 1) * PAGE_BITS)
            mask = ((1 << (stop - i)) - 1) << bit
            old = self._pages.get(page, 0)
            if old | mask != old:
                changes[page] = old | mask
            i = stop
        return changes

    def truncate_changes(self, length: int) -> PageChanges:
        """Page values after clearing every index ``>= length``."""
        _check_range(length, length)
        changes: PageChanges = {}
        first = length // PAGE_BITS
        for page in self._order[bisect.bisect_left(self._order, first) :]:
            keep = (1 << (length - page * PAGE_BITS)) - 1 if page == first else 0
            bits = self._pages[page]
            if bits & keep != bits:
                changes[page] = bits & keep
        return changes

    def apply(self, changes: Mapping[int, int]) -> None:
        for page, bits in changes.items():
            if bits:
                if page not in self._pages:
                    bisect.insort(self._order, page)
                self._pages[page] = bits
            elif page in self._pages:
                del self._pages[page]
                self._order.remove(page)


def _check_range(start: int, end: int) -> None:
    if not 0 <= start <= end <= MAX_LENGTH:
        raise InvalidInput(f"block range [{start}, {end}) is not within [0, 2^62]")


__all__ = ["MAX_PAGE", "PAGE_BITS", "PAGE_BYTES", "Bitfield", "PageChanges", "decode_page", "encode_page"]
