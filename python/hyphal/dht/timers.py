"""The timers of a sans-I/O state machine: callbacks due at a time, the driver fires them.

The machine never sleeps: it asks :meth:`Timers.call_at` for a callback, the
driver polls :meth:`Timers.next_due` and calls :meth:`Timers.fire` once that
time has come. Timers due at the same time fire in the order they were set,
so a seeded simulation replays exactly.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable


class Timer:
    """One pending callback; :meth:`cancel` keeps it from firing."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[float], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class Timers:
    """A heap of :class:`Timer`; a cancelled timer stays in it until it reaches the top."""

    __slots__ = ("_heap", "_seq")

    def __init__(self) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()

    def call_at(self, when: float, callback: Callable[[float], None]) -> Timer:
        timer = Timer(when, callback)
        heapq.heappush(self._heap, (when, next(self._seq), timer))
        return timer

    def next_due(self) -> float | None:
        """When the next live timer is due, or None."""
        heap = self._heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def fire(self, now: float) -> None:
        """Run every live timer due at ``now`` (including ones the callbacks set, if due)."""
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, _, timer = heapq.heappop(heap)
            if not timer.cancelled:
                timer.cancelled = True
                timer.callback(now)

    def clear(self) -> None:
        self._heap.clear()


__all__ = ["Timer", "Timers"]
