"""An iterative mainline lookup (BEP 5) as a pure state machine: whom to ask next, when it is done.

The node feeds it the nodes each reply names and the replies and timeouts
it sees; :meth:`Lookup.next_queries` says whom to ask. Candidates stay
sorted by XOR distance to the target (in Rust, via :mod:`.ids`); at most
``alpha`` queries are in flight, and the lookup ends when the ``k`` closest
candidates that did not fail have all answered, or after ``max_queries``
(a bound on what one lookup costs the network).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hyphal.mainline.ids import sort_by_distance
from hyphal.mainline.messages import Addr

NEW, IN_FLIGHT, ANSWERED, FAILED = range(4)


@dataclass(slots=True)
class Candidate:
    id: bytes
    addr: Addr
    state: int = NEW
    token: bytes | None = None
    """The write token it gave (get_peers and get replies)."""


class Lookup:
    __slots__ = (
        "_all",
        "_dirty",
        "_order",
        "alpha",
        "exclude",
        "finished",
        "in_flight",
        "k",
        "max_queries",
        "queries",
        "target",
        "timeouts",
    )

    def __init__(
        self, target: bytes, *, k: int = 8, alpha: int = 3, max_queries: int = 100, exclude: bytes = b""
    ) -> None:
        self.target = target
        self.k = k
        self.alpha = alpha
        self.max_queries = max_queries
        self.exclude = exclude
        self._all: dict[bytes, Candidate] = {}
        self._order: list[Candidate] = []
        self._dirty = False
        self.in_flight = 0
        self.queries = 0
        self.timeouts = 0
        self.finished = False

    def add(self, nodes: Iterable[tuple[bytes, Addr]]) -> None:
        for node_id, addr in nodes:
            if node_id == self.exclude or node_id in self._all:
                continue
            c = self._all[node_id] = Candidate(node_id, addr)
            self._order.append(c)
            self._dirty = True

    def _sorted(self) -> list[Candidate]:
        if self._dirty:
            order = sort_by_distance(self.target, [c.id for c in self._order])
            self._order = [self._order[i] for i in order]
            self._dirty = False
        return self._order

    def _frontier(self) -> list[Candidate]:
        out = []
        for c in self._sorted():
            if c.state != FAILED:
                out.append(c)
                if len(out) == self.k:
                    break
        return out

    def next_queries(self) -> list[Candidate]:
        if self.finished:
            return []
        out = []
        for c in self._frontier():
            if self.in_flight >= self.alpha or self.queries >= self.max_queries:
                break
            if c.state == NEW:
                c.state = IN_FLIGHT
                self.in_flight += 1
                self.queries += 1
                out.append(c)
        return out

    def answered(self, c: Candidate, token: bytes | None) -> None:
        if c.state == IN_FLIGHT:
            self.in_flight -= 1
        c.state = ANSWERED
        c.token = token

    def failed(self, c: Candidate) -> None:
        if c.state == IN_FLIGHT:
            self.in_flight -= 1
            self.timeouts += 1
        c.state = FAILED

    @property
    def done(self) -> bool:
        if self.finished:
            return True
        if self.in_flight:
            return False
        if self.queries >= self.max_queries:
            return True
        return not any(c.state == NEW for c in self._frontier())

    def finish(self) -> None:
        self.finished = True

    def closest_answered(self) -> list[Candidate]:
        return [c for c in self._sorted() if c.state == ANSWERED][: self.k]


__all__ = ["ANSWERED", "FAILED", "IN_FLIGHT", "NEW", "Candidate", "Lookup"]
