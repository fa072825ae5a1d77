"""The wall clock, as code that signs timestamps or stamps files reads it.

:func:`wall_time` is ``time.time()``, unless the running event loop keeps a
clock of its own (``loop.wall_time()``): the simulator's virtual loop
(:mod:`hyphal.sim.clock`) does, so signed timestamps and file times in a
simulation follow virtual time and a seed replays them exactly.
"""

from __future__ import annotations

import asyncio
import time


def wall_time() -> float:
    """UNIX time in seconds: the running loop's ``wall_time()`` if it has one, else ``time.time()``."""
    clock = getattr(asyncio.events._get_running_loop(), "wall_time", None)
    return time.time() if clock is None else float(clock())


__all__ = ["wall_time"]
