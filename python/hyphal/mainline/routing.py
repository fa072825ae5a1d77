"""The routing table of a mainline node: 160 k-buckets by shared-prefix length (BEP 5).

A contact is an id, the address it answered from, when it was last heard
and how many queries to it failed in a row. A full bucket takes a newcomer
only in place of a contact that failed ``max_failures`` times (BEP 5's "bad"
node); otherwise the newcomer is dropped, since long-lived nodes are the
ones most likely to stay. Read-only nodes (BEP 43) never enter it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from hyphal.mainline.ids import ID_BITS, NODE_ID_SIZE, bucket_index, sort_by_distance
from hyphal.mainline.messages import Addr


@dataclass(slots=True)
class Contact:
    id: bytes
    addr: Addr
    last_seen: float
    failures: int = 0


class RoutingTable:
    __slots__ = ("_buckets", "_by_id", "k", "max_failures", "own")

    def __init__(self, own: bytes, *, k: int = 8, max_failures: int = 2) -> None:
        self.own = own
        self.k = k
        self.max_failures = max_failures
        self._buckets: list[list[Contact]] = [[] for _ in range(ID_BITS)]
        self._by_id: dict[bytes, Contact] = {}

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._by_id

    def get(self, node_id: bytes) -> Contact | None:
        return self._by_id.get(node_id)

    def contacts(self) -> list[Contact]:
        return list(self._by_id.values())

    def seen(self, node_id: bytes, addr: Addr, now: float) -> bool:
        """``node_id`` answered (or queried us) from ``addr``; True if it is in the table now."""
        if node_id == self.own or len(node_id) != NODE_ID_SIZE:
            return False
        known = self._by_id.get(node_id)
        if known is not None:
            known.addr, known.last_seen, known.failures = addr, now, 0
            return True
        bucket = self._buckets[min(bucket_index(self.own, node_id), ID_BITS - 1)]
        if len(bucket) >= self.k:
            bad = [c for c in bucket if c.failures >= self.max_failures]
            if not bad:
                return False
            self._remove(bucket, bad[0])
        contact = Contact(node_id, addr, now)
        bucket.append(contact)
        self._by_id[node_id] = contact
        return True

    def failed(self, node_id: bytes) -> None:
        """A query to ``node_id`` timed out; a node that fails too often is dropped when a bucket needs room,
        and at once if it never answered at all."""
        contact = self._by_id.get(node_id)
        if contact is not None:
            contact.failures += 1
            if contact.failures > self.max_failures:
                self._remove(self._buckets[min(bucket_index(self.own, node_id), ID_BITS - 1)], contact)

    def _remove(self, bucket: list[Contact], contact: Contact) -> None:
        bucket.remove(contact)
        del self._by_id[contact.id]

    def closest(self, target: bytes, count: int) -> list[Contact]:
        """The ``count`` contacts nearest ``target`` that are not failing, nearest first."""
        good = [c for c in self._by_id.values() if c.failures < self.max_failures] or list(
            self._by_id.values()
        )
        order = sort_by_distance(target, [c.id for c in good])
        return [good[i] for i in order[:count]]

    def stale(self, now: float, age: float) -> list[Contact]:
        """Contacts not heard from for ``age`` seconds (to ping)."""
        return [c for c in self._by_id.values() if now - c.last_seen >= age]

    def refresh_target(self, rng: random.Random) -> bytes:
        """A random id near our own (a lookup of it fills the buckets that matter most)."""
        flip = rng.randrange(8, 24)
        own = int.from_bytes(self.own, "big") ^ rng.getrandbits(ID_BITS - flip)
        return own.to_bytes(NODE_ID_SIZE, "big")


__all__ = ["Contact", "RoutingTable"]
