"""Sets of block indexes kept as sorted, disjoint half-open ranges.

Holdings, wants and in-flight reservations are all "runs of blocks", and a
feed of 2^62 blocks cannot be a Python set of ints. ``OPEN_END`` stands for
"and everything after, including blocks not appended yet".
"""

from __future__ import annotations

import heapq
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Iterator

from hyphal.errors import InvalidInput

OPEN_END: int = 2**64 - 1
"""The end of an open range: every block from its start on, including future ones."""


class RangeSet:
    """A set of non-negative integers stored as sorted, disjoint, non-adjacent ``[start, end)`` runs."""

    __slots__ = ("_ends", "_starts")

    def __init__(self, ranges: Iterable[tuple[int, int]] = ()) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        self.update(ranges)

    # -- queries ---------------------------------------------------------------

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return zip(self._starts, self._ends, strict=True)

    def __len__(self) -> int:
        """The number of runs (not of integers; see :meth:`count`)."""
        return len(self._starts)

    def __bool__(self) -> bool:
        return bool(self._starts)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RangeSet):
            return NotImplemented
        return self._starts == other._starts and self._ends == other._ends

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        runs = ", ".join(f"[{s}, {'∞' if e == OPEN_END else e})" for s, e in self)
        return f"RangeSet({runs})"

    def __contains__(self, index: object) -> bool:
        if not isinstance(index, int):
            return False
        i = bisect_right(self._starts, index) - 1
        return i >= 0 and index < self._ends[i]

    def covers(self, start: int, end: int) -> bool:
        """True when every integer of ``[start, end)`` is in the set (always for an empty range)."""
        if start >= end:
            return True
        i = bisect_right(self._starts, start) - 1
        return i >= 0 and end <= self._ends[i]

    def count(self) -> int:
        """How many integers the set holds."""
        return sum(e - s for s, e in self)

    def first(self) -> tuple[int, int] | None:
        return (self._starts[0], self._ends[0]) if self._starts else None

    def last_end(self) -> int:
        """The end of the last run, 0 when empty."""
        return self._ends[-1] if self._ends else 0

    def copy(self) -> RangeSet:
        out = RangeSet()
        out._starts = list(self._starts)
        out._ends = list(self._ends)
        return out

    # -- mutation --------------------------------------------------------------

    def add(self, start: int, end: int) -> None:
        """Add ``[start, end)``; merges with runs it overlaps or touches."""
        _check(start, end)
        if start == end:
            return
        # Runs that overlap or touch [start, end) are those with s <= end and e >= start.
        lo = bisect_left(self._ends, start)
        hi = bisect_right(self._starts, end)
        if lo < hi:
            start = min(start, self._starts[lo])
            end = max(end, self._ends[hi - 1])
        self._starts[lo:hi] = [start]
        self._ends[lo:hi] = [end]

    def remove(self, start: int, end: int) -> None:
        """Remove ``[start, end)``; a run it cuts through is split."""
        _check(start, end)
        if start == end:
            return
        lo = bisect_right(self._ends, start)
        hi = bisect_left(self._starts, end)
        if lo >= hi:
            return
        new_starts: list[int] = []
        new_ends: list[int] = []
        if self._starts[lo] < start:
            new_starts.append(self._starts[lo])
            new_ends.append(start)
        if self._ends[hi - 1] > end:
            new_starts.append(end)
            new_ends.append(self._ends[hi - 1])
        self._starts[lo:hi] = new_starts
        self._ends[lo:hi] = new_ends

    def update(self, other: Iterable[tuple[int, int]]) -> None:
        """Add many ranges in one linear merge (a peer's HAVE may carry a thousand)."""
        runs = list(other) if isinstance(other, RangeSet) else sorted(other)
        starts: list[int] = []
        ends: list[int] = []
        for start, end in heapq.merge(zip(self._starts, self._ends, strict=True), runs):
            _check(start, end)
            if start == end:
                continue
            if starts and start <= ends[-1]:
                ends[-1] = max(ends[-1], end)
            else:
                starts.append(start)
                ends.append(end)
        self._starts, self._ends = starts, ends

    def difference_update(self, other: Iterable[tuple[int, int]]) -> None:
        """Remove many ranges in one linear sweep."""
        cut = other if isinstance(other, RangeSet) else RangeSet(other)
        cut_starts, cut_ends = cut._starts, cut._ends
        starts: list[int] = []
        ends: list[int] = []
        j = 0
        for start, end in zip(self._starts, self._ends, strict=True):
            while j < len(cut_starts) and cut_ends[j] <= start:
                j += 1  # cuts wholly before this run are before every later run too
            position = start
            k = j
            while k < len(cut_starts) and cut_starts[k] < end and position < end:
                if cut_starts[k] > position:
                    starts.append(position)
                    ends.append(cut_starts[k])
                position = max(position, cut_ends[k])
                k += 1
            if position < end:
                starts.append(position)
                ends.append(end)
        self._starts, self._ends = starts, ends

    def clear(self) -> None:
        self._starts.clear()
        self._ends.clear()

    # -- new sets --------------------------------------------------------------

    def union(self, other: Iterable[tuple[int, int]]) -> RangeSet:
        out = self.copy()
        out.update(other)
        return out

    def difference(self, other: Iterable[tuple[int, int]]) -> RangeSet:
        out = self.copy()
        out.difference_update(other)
        return out

    def intersection(self, other: RangeSet) -> RangeSet:
        out = RangeSet()
        i = j = 0
        a, b = list(self), list(other)
        while i < len(a) and j < len(b):
            s = max(a[i][0], b[j][0])
            e = min(a[i][1], b[j][1])
            if s < e:
                out._starts.append(s)
                out._ends.append(e)
            if a[i][1] < b[j][1]:
                i += 1
            else:
                j += 1
        return out

    def clip(self, start: int, end: int) -> RangeSet:
        """The part of the set inside ``[start, end)``."""
        return self.intersection(RangeSet([(start, end)])) if start < end else RangeSet()


def _check(start: int, end: int) -> None:
    if not 0 <= start <= end <= OPEN_END:
        raise InvalidInput(f"bad range [{start}, {end})")


__all__ = ["OPEN_END", "RangeSet"]
