"""Operations a :class:`~hyphal.dht.node.DhtNode` runs for its user, and their results.

An :class:`Operation` completes once, with a result or an error; drivers
turn it into something awaitable (:mod:`hyphal.dht.udp`) or poll it (the
simulator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from hyphal.dht.records import Addr, AnnounceRecord, NodeRecord
from hyphal.signed_value import SignedValue

T = TypeVar("T")


class Operation(Generic[T]):
    """One running request or lookup. ``done`` once it has a result or an error."""

    __slots__ = ("_callbacks", "_error", "_result", "done", "finished_at", "kind", "started_at")

    def __init__(self, kind: str, started_at: float) -> None:
        self.kind = kind
        self.started_at = started_at
        self.finished_at: float | None = None
        self.done = False
        self._result: T | None = None
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Operation[T]], None]] = []

    def on_done(self, callback: Callable[[Operation[T]], None]) -> None:
        """Call ``callback(self)`` when done (at once if it already is)."""
        if self.done:
            callback(self)
        else:
            self._callbacks.append(callback)

    def result(self) -> T:
        """The result; raises the error the operation ended with, or RuntimeError while running."""
        if not self.done:
            raise RuntimeError(f"{self.kind} is still running")
        if self._error is not None:
            raise self._error
        return self._result  # type: ignore[return-value]

    @property
    def error(self) -> BaseException | None:
        return self._error

    def _finish(self, now: float, result: T | None = None, error: BaseException | None = None) -> None:
        if self.done:
            return
        self.done = True
        self.finished_at = now
        self._result = result
        self._error = error
        callbacks, self._callbacks = self._callbacks, []
        for cb in callbacks:
            cb(self)

    @property
    def latency(self) -> float | None:
        return None if self.finished_at is None else self.finished_at - self.started_at


@dataclass(slots=True)
class LookupResult:
    """What an iterative lookup found."""

    target: bytes
    closest: list[NodeRecord]
    """The nearest nodes that answered, nearest first (at most k)."""
    contacts: list[tuple[NodeRecord, Addr, bytes]] = field(default_factory=list)
    """``closest`` with the address each answered from and the write token it gave."""
    hops: int = 0
    """Hop at which the nearest answering node was learned (seeds are hop 1)."""
    queries: int = 0
    timeouts: int = 0
    announces: list[AnnounceRecord] = field(default_factory=list)
    value: bytes | None = None
    signed_value: SignedValue | None = None
    repaired: int = 0
    """Stale or missing copies this get pushed the newest value to."""


@dataclass(slots=True)
class PutResult:
    """How a put went: ``stored`` holders accepted it, the others refused (status per reason)."""

    key: bytes
    stored: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    """Status -> count of holders that refused with it."""
    conflicts: list[int] = field(default_factory=list)
    """Seqs held by holders that reported a CAS mismatch or a newer seq."""
    timeouts: int = 0
    seq: int | None = None
    """The seq that was put (mutable puts)."""


__all__ = ["LookupResult", "Operation", "PutResult"]
