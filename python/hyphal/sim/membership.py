"""Membership logs gossiping in a seeded simulated network: partitions, loss, duplicates, reordering.

:class:`LogNetwork` holds one :class:`~hyphal.groups.membership.MembershipLog`
per device and a queue of entries in flight. Each :meth:`LogNetwork.step`
delivers one in-flight entry picked at random (so arrival order is
shuffled), sometimes delivers it twice or drops it, and never across a
partition. :meth:`LogNetwork.heal` then lets every replica send everything
it holds to every other (what the group channel does on connect, §14.5), so
a test can check that every device ends on the same membership whatever the
order was. Whole nodes run in :mod:`hyphal.sim.system`; this is the log alone,
fast enough to try thousands of interleavings.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from hyphal.groups.membership import Entry, MembershipLog, MembershipState, decode_entry
from hyphal.signing import KeyPair


@dataclass(slots=True)
class LogNetwork:
    """Devices' membership logs and the entries travelling between them."""

    group: KeyPair
    devices: list[KeyPair]
    seed: int = 0
    duplicate: float = 0.2
    loss: float = 0.1
    logs: dict[bytes, MembershipLog] = field(init=False)
    in_flight: list[tuple[bytes, Entry]] = field(init=False, default_factory=list)
    """``(destination device, entry)``."""
    side: dict[bytes, int] = field(init=False, default_factory=dict)
    """Each device's side of the partition (all 0 when whole)."""
    random: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.logs = {d.public_key: MembershipLog(self.group.public_key) for d in self.devices}
        self.side = {d.public_key: 0 for d in self.devices}

    def genesis(self, founders: Iterable[bytes]) -> Entry:
        origin = self.devices[0].public_key
        entry = self.logs[origin].genesis(self.group, founders)
        self.broadcast(origin, entry)
        return entry

    def approve(self, author: KeyPair, device: bytes, name: str = "") -> Entry:
        entry = self.logs[author.public_key].approve(author, device, name)
        self.broadcast(author.public_key, entry)
        return entry

    def remove(self, author: KeyPair, device: bytes, repo_length: int = 0) -> Entry:
        entry = self.logs[author.public_key].remove(author, device, repo_length)
        self.broadcast(author.public_key, entry)
        return entry

    def broadcast(self, source: bytes, entry: Entry) -> None:
        for device in self.logs:
            if device != source:
                self.in_flight.append((device, entry))

    def partition(self, *sides: Iterable[bytes]) -> None:
        for index, members in enumerate(sides):
            for device in members:
                self.side[device] = index

    def heal(self) -> None:
        """Whole again: every device sends every entry it holds to every other."""
        self.side = dict.fromkeys(self.side, 0)
        for source, log in self.logs.items():
            for raw in log.encoded():
                self.broadcast(source, decode_entry(raw))

    def step(self) -> bool:
        """Deliver (or drop, or hold back across a partition) one entry; ``False`` when none can move."""
        movable = [i for i, (dest, entry) in enumerate(self.in_flight) if self._reachable(dest, entry)]
        if not movable:
            return False
        index = self.random.choice(movable)
        dest, entry = self.in_flight.pop(index)
        if self.random.random() < self.loss:
            return True
        self.logs[dest].add(entry)
        if self.random.random() < self.duplicate:
            self.in_flight.append((dest, entry))  # delivered again later, maybe after others
        return True

    def _reachable(self, dest: bytes, entry: Entry) -> bool:
        # An entry is in flight from whoever last sent it; a partition holds back entries whose
        # author is on the other side (a relay on this side may still hold a copy: heal resends).
        author_side = self.side.get(entry.author, self.side[dest])
        return author_side == self.side[dest]

    def run(self) -> None:
        while self.step():
            pass

    def settle(self) -> None:
        """Heal, then deliver everything without loss: the state every device must agree on."""
        self.loss = 0.0
        self.heal()
        self.run()

    def states(self) -> dict[bytes, MembershipState]:
        return {device: log.state for device, log in self.logs.items()}


__all__ = ["LogNetwork"]
