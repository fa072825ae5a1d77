"""Per-address round-trip estimates and the timeouts they give (RFC 6298 style).

Every answered request gives a sample. A node's timeout is
``SRTT + 4·RTTVAR`` clamped to ``[min_timeout, max_timeout]``. A node with no
samples yet gets 1.5 times the slowest of the last 32 samples from any node
(a first contact may be as far as the farthest node we know), or
``initial_timeout`` until there are 8 samples. So a dead node costs a few
RTTs, not seconds. Each timeout doubles that address's next timeout (Karn's
backoff) until it answers again.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from hyphal.dht.records import Addr


@dataclass(slots=True)
class _Estimate:
    srtt: float
    rttvar: float
    backoff: int = 0


def _update(e: _Estimate, rtt: float) -> None:
    e.rttvar = 0.75 * e.rttvar + 0.25 * abs(e.srtt - rtt)
    e.srtt = 0.875 * e.srtt + 0.125 * rtt
    e.backoff = 0


class RttEstimator:
    """SRTT/RTTVAR per address (at most ``capacity`` of them, least recent dropped) and overall."""

    __slots__ = ("_capacity", "_per", "_recent", "initial_timeout", "max_timeout", "min_timeout")

    def __init__(
        self,
        *,
        min_timeout: float = 0.05,
        max_timeout: float = 2.0,
        initial_timeout: float = 1.0,
        capacity: int = 4096,
    ) -> None:
        self.min_timeout = min_timeout
        self.max_timeout = max_timeout
        self.initial_timeout = initial_timeout
        self._capacity = capacity
        self._per: dict[Addr, _Estimate] = {}
        self._recent: deque[float] = deque(maxlen=32)

    def sample(self, addr: Addr, rtt: float) -> None:
        rtt = max(rtt, 0.0)
        e = self._per.pop(addr, None)
        if e is None:
            e = _Estimate(rtt, rtt / 2)
            if len(self._per) >= self._capacity:
                del self._per[next(iter(self._per))]
        else:
            _update(e, rtt)
        self._per[addr] = e
        self._recent.append(rtt)

    def timed_out(self, addr: Addr) -> None:
        e = self._per.get(addr)
        if e is not None:
            e.backoff = min(e.backoff + 1, 6)

    def timeout(self, addr: Addr) -> float:
        e = self._per.get(addr)
        if e is None:
            if len(self._recent) < 8:
                return self.initial_timeout
            return min(self.max_timeout, max(self.min_timeout, 1.5 * max(self._recent)))
        rto: float = (e.srtt + 4 * e.rttvar) * (2**e.backoff)
        return min(self.max_timeout, max(self.min_timeout, rto))

    def srtt(self, addr: Addr) -> float | None:
        e = self._per.get(addr)
        return None if e is None else e.srtt


__all__ = ["RttEstimator"]
