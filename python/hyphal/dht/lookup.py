"""An iterative, parallel Kademlia lookup, as a pure state machine (no sending, no clock).

The node feeds it the nodes it learns and the replies and timeouts it
sees; :meth:`Lookup.next_queries` says whom to ask next. Each path keeps its
candidates sorted by XOR distance to the target (sorted in Rust, via
:mod:`hyphal.xor`) and keeps at most ``alpha`` queries in flight. A path is
done when the ``k`` closest candidates it has not seen fail have all
answered. As in the Kademlia paper, once a reply brings no node closer
than the closest already known, the path stops waiting for improvements and
asks all its remaining k closest at once. With ``paths > 1`` the lookup runs that many disjoint paths
(S/Kademlia): every node is asked by one path only, so one path of
attackers cannot steer the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from hyphal.dht.records import Addr, NodeRecord
from hyphal.xor import xor_sort

NEW, IN_FLIGHT, ANSWERED, FAILED = range(4)


@dataclass(slots=True)
class Candidate:
    record: NodeRecord
    addr: Addr
    path: int
    hop: int
    state: int = NEW
    token: bytes = b""

    @property
    def id(self) -> bytes:
        return self.record.id


class _Path:
    __slots__ = ("dirty", "ids", "in_flight", "order", "stalled")

    def __init__(self) -> None:
        self.order: list[Candidate] = []
        self.ids: list[bytes] = []
        self.dirty = False
        self.in_flight = 0
        self.stalled = False


class Lookup:
    __slots__ = ("_all", "_paths", "alpha", "exclude", "finished", "k", "queries", "target", "timeouts")

    def __init__(
        self, target: bytes, *, k: int = 20, alpha: int = 3, paths: int = 1, exclude: bytes = b""
    ) -> None:
        self.target = target
        self.k = k
        self.alpha = alpha
        self.exclude = exclude
        self._paths = [_Path() for _ in range(max(1, paths))]
        self._all: dict[bytes, Candidate] = {}
        self.finished = False
        self.queries = 0
        self.timeouts = 0

    def seed(self, nodes: Iterable[tuple[NodeRecord, Addr]]) -> None:
        """The starting nodes (hop 1), dealt round-robin to the paths."""
        for i, (record, addr) in enumerate(nodes):
            self._add(record, addr, i % len(self._paths), 1)

    def learned(self, parent: Candidate, nodes: Iterable[tuple[NodeRecord, Addr]]) -> None:
        """``parent`` answered with ``nodes``; they join its path one hop further."""
        path, hop = parent.path, parent.hop + 1
        p = self._paths[path]
        before = self._sorted(p)[0].record.id if p.order else None
        known, exclude, order, ids = self._all, self.exclude, p.order, p.ids
        for record, addr in nodes:  # _add, inlined: every reply brings up to k nodes
            nid = record.id
            if nid == exclude or nid in known:
                continue
            c = known[nid] = Candidate(record, addr, path, hop)
            order.append(c)
            ids.append(nid)
            p.dirty = True
        if before is not None and self._sorted(p)[0].record.id == before:
            p.stalled = True

    def _add(self, record: NodeRecord, addr: Addr, path: int, hop: int) -> None:
        if record.id == self.exclude or record.id in self._all:
            return
        c = Candidate(record, addr, path, hop)
        self._all[record.id] = c
        p = self._paths[path]
        p.order.append(c)
        p.ids.append(record.id)
        p.dirty = True

    def _sorted(self, p: _Path) -> list[Candidate]:
        if p.dirty:
            order = xor_sort(self.target, b"".join(p.ids))
            p.order = [p.order[i] for i in order]
            p.ids = [c.id for c in p.order]
            p.dirty = False
        return p.order

    def _frontier(self, p: _Path) -> list[Candidate]:
        """The k closest candidates of a path that have not failed."""
        out = []
        for c in self._sorted(p):
            if c.state != FAILED:
                out.append(c)
                if len(out) == self.k:
                    break
        return out

    def next_queries(self) -> list[Candidate]:
        """Candidates to ask now (marked in flight)."""
        if self.finished:
            return []
        out = []
        for p in self._paths:
            room = (self.k if p.stalled else self.alpha) - p.in_flight
            if room <= 0:
                continue
            for c in self._frontier(p):
                if c.state == NEW:
                    c.state = IN_FLIGHT
                    p.in_flight += 1
                    out.append(c)
                    room -= 1
                    if room == 0:
                        break
        self.queries += len(out)
        return out

    def answered(self, c: Candidate, token: bytes = b"") -> None:
        """``c`` answered (possibly after it was given up on: a late reply still counts)."""
        if c.state == IN_FLIGHT:
            self._paths[c.path].in_flight -= 1
        c.state = ANSWERED
        c.token = token

    def failed(self, c: Candidate) -> None:
        if c.state == IN_FLIGHT:
            self._paths[c.path].in_flight -= 1
            self.timeouts += 1
        c.state = FAILED

    @property
    def done(self) -> bool:
        if self.finished:
            return True
        return not any(p.in_flight or self._frontier_has_new(p) for p in self._paths)

    def _frontier_has_new(self, p: _Path) -> bool:
        """A candidate of the path's frontier (see :meth:`_frontier`) was never asked."""
        left = self.k
        for c in self._sorted(p):
            if c.state != FAILED:
                if c.state == NEW:
                    return True
                left -= 1
                if left == 0:
                    return False
        return False

    def finish(self) -> None:
        """Stop early (a value was found); in-flight replies are then ignored."""
        self.finished = True

    def closest_answered(self, count: int | None = None) -> list[Candidate]:
        """The nearest nodes that answered, over every path, nearest first."""
        answered = [c for c in self._all.values() if c.state == ANSWERED]
        order = xor_sort(self.target, b"".join(c.id for c in answered)) if answered else []
        return [answered[i] for i in order[: self.k if count is None else count]]

    @property
    def in_flight(self) -> int:
        return sum(p.in_flight for p in self._paths)


__all__ = ["ANSWERED", "FAILED", "IN_FLIGHT", "NEW", "Candidate", "Lookup"]
