"""Per-address rate limits and the counters of what a node dropped.

A token bucket per source IP (not per port: one host gets one budget)
refills at ``rate`` requests a second up to ``burst``. At most ``capacity``
addresses are tracked; the least recently seen is forgotten first, so a
flood from many addresses costs bounded memory.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

from hyphal.errors import DecodeError, VerificationError

T = TypeVar("T")
log = logging.getLogger("hyphal.dht")


@dataclass(slots=True)
class Counters:
    """What a node received and refused. Nothing refused is ever stored."""

    received: int = 0
    sent: int = 0
    oversized: int = 0
    malformed: int = 0
    forged: int = 0
    """A signature or a key binding did not verify."""
    rate_limited: int = 0
    unexpected: int = 0
    """Responses to no request of ours (late, spoofed or duplicated)."""
    refused: int = 0
    """Well-formed requests answered with an error status."""
    timeouts: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def verified(self, decode: Callable[[bytes], T], raw: bytes) -> T | None:
        """``decode(raw)`` for a decoder that also verifies; None (and counted) when malformed or forged."""
        try:
            return decode(raw)
        except DecodeError as e:
            self.malformed += 1
            log.debug("dropped a malformed record: %s", e)
        except VerificationError as e:
            self.forged += 1
            log.debug("dropped a forged record: %s", e)
        return None


class RateLimiter:
    __slots__ = ("_buckets", "_burst", "_capacity", "_rate")

    def __init__(self, rate: float = 100.0, burst: float = 200.0, capacity: int = 8192) -> None:
        self._rate = rate
        self._burst = burst
        self._capacity = capacity
        self._buckets: dict[str, tuple[float, float]] = {}  # host -> (tokens, last refill)

    def allow(self, host: str, now: float) -> bool:
        """Take one token for ``host``; False when its budget is spent."""
        state = self._buckets.pop(host, None)
        if state is None:
            if len(self._buckets) >= self._capacity:
                del self._buckets[next(iter(self._buckets))]
            tokens = self._burst
        else:
            tokens = min(self._burst, state[0] + (now - state[1]) * self._rate)
        allowed = tokens >= 1.0
        self._buckets[host] = (tokens - 1.0 if allowed else tokens, now)
        return allowed


__all__ = ["Counters", "RateLimiter"]
