"""The Kademlia routing table: k-buckets split by prefix, with a replacement cache.

Bucket ``i`` of ``L`` holds the nodes whose id shares exactly ``i`` leading
bits with ours; the last bucket holds every id sharing ``L - 1`` or more, and
it alone splits when it overflows (so buckets split by prefix, and the table
is finest around our own id). Entries are kept least recently seen first.

A node enters the table only through :meth:`RoutingTable.seen`, which the
node calls when that node *answered us*. When its bucket is full and cannot
split, the newcomer waits in the bucket's replacement cache and ``seen``
returns the least recently seen entry for the caller to ping
(ping-before-evict): if that ping fails, :meth:`evict` promotes the freshest
replacement. Lookups that time out call :meth:`failed`; an entry failing
``stale_after`` times in a row is replaced when a replacement waits, and dropped after ``drop_after`` failures
in a row in any case.

:meth:`RoutingTable.heard` notes a request an entry sent us from its
address: the entry was alive then (its ``last_heard``), and its bucket had
traffic, so it needs no refresh lookup (Kademlia refreshes only buckets no
message passed through). A request never adds, reorders or un-fails an
entry: only answers to our own requests do that.
"""

from __future__ import annotations

import contextlib
import random
import struct
from collections.abc import Iterator
from dataclasses import dataclass

from hyphal import _core
from hyphal.dht.ids import ID_BITS, random_id_with_prefix
from hyphal.dht.records import Addr, NodeRecord
from hyphal.errors import DecodeError, VerificationError
from hyphal.xor import bucket_index

K = 20
TABLE_VERSION = 1
_U16 = struct.Struct("<H")


@dataclass(slots=True)
class Contact:
    """A node that answered us: its record, the address it answered from, and its health.

    ``last_seen`` is when it last answered us; ``last_heard`` when we last got
    anything from it (an answer, or a request from ``addr``).
    """

    record: NodeRecord
    addr: Addr
    last_seen: float
    failures: int = 0
    last_heard: float = float("-inf")

    @property
    def id(self) -> bytes:
        return self.record.id


class Bucket:
    __slots__ = ("entries", "last_changed", "replacements")

    def __init__(self, now: float) -> None:
        self.entries: dict[bytes, Contact] = {}  # least recently seen first
        self.replacements: dict[bytes, Contact] = {}  # oldest first
        self.last_changed = now


class RoutingTable:
    __slots__ = ("_buckets", "_closest_cache", "drop_after", "k", "own_id", "stale_after")

    def __init__(
        self, own_id: bytes, *, k: int = K, now: float = 0.0, stale_after: int = 2, drop_after: int = 5
    ) -> None:
        self.own_id = own_id
        self.k = k
        self.stale_after = stale_after
        self.drop_after = drop_after
        self._buckets = [Bucket(now)]
        self._closest_cache: tuple[list[Contact], bytes] | None = None

    # -- queries --------------------------------------------------------------------

    def __len__(self) -> int:
        return sum(len(b.entries) for b in self._buckets)

    def __iter__(self) -> Iterator[Contact]:
        for b in self._buckets:
            yield from b.entries.values()

    def __contains__(self, node_id: bytes) -> bool:
        return node_id in self._bucket_of(node_id).entries

    @property
    def bucket_count(self) -> int:
        return len(self._buckets)

    def has_room(self, node_id: bytes) -> bool:
        """True when ``node_id`` would enter the table at once (room, or a bucket that can split)."""
        index = self._index_of(node_id)
        if len(self._buckets[index].entries) < self.k:
            return True
        return index == len(self._buckets) - 1 and len(self._buckets) < ID_BITS

    def get(self, node_id: bytes) -> Contact | None:
        return self._bucket_of(node_id).entries.get(node_id)

    def bucket_sizes(self) -> list[int]:
        return [len(b.entries) for b in self._buckets]

    def closest(self, target: bytes, count: int | None = None) -> list[Contact]:
        """The ``count`` (default k) contacts nearest ``target``, nearest first (sorted in Rust)."""
        if self._closest_cache is None:
            contacts = list(self)
            self._closest_cache = (contacts, b"".join([c.record.id for c in contacts]))
        contacts, ids = self._closest_cache
        if not contacts:
            return []
        return [contacts[i] for i in _core.xor_closest(target, ids, self.k if count is None else count)]

    def stale_buckets(self, now: float, interval: float) -> list[int]:
        """Indexes of buckets nothing touched for ``interval`` seconds."""
        return [i for i, b in enumerate(self._buckets) if now - b.last_changed >= interval]

    def refresh_target(self, index: int, rng: random.Random) -> bytes:
        """A random id that falls in bucket ``index``."""
        return random_id_with_prefix(self.own_id, index, rng)

    def touch(self, target: bytes, now: float) -> None:
        """A lookup for ``target`` ran: its bucket is fresh."""
        self._bucket_of(target).last_changed = now

    def quiet_bucket_oldest(self, node_id: bytes, since: float) -> Contact | None:
        """The least recently seen entry of ``node_id``'s bucket if nothing changed in it since ``since``."""
        bucket = self._bucket_of(node_id)
        if bucket.last_changed > since or not bucket.entries:
            return None
        return next(iter(bucket.entries.values()))

    def heard(self, node_id: bytes, addr: Addr, now: float) -> None:
        """``node_id`` sent us a verified request from ``addr``: if that is its entry's address, the
        entry was alive at ``now`` and its bucket is fresh (nothing else changes)."""
        bucket = self._bucket_of(node_id)
        contact = bucket.entries.get(node_id)
        if contact is not None and contact.addr == addr:
            contact.last_heard = now
            bucket.last_changed = now

    # -- updates -----------------------------------------------------------------------

    def seen(self, record: NodeRecord, addr: Addr, now: float) -> Contact | None:
        """``record``'s node answered us from ``addr``: add or refresh it.

        Returns the least recently seen contact of a full bucket that should
        be pinged before it is evicted for this node, or None.
        """
        if record.id == self.own_id:
            return None
        while True:
            index = self._index_of(record.id)
            bucket = self._buckets[index]
            contact = bucket.entries.pop(record.id, None)
            if contact is not None:
                self._refresh(contact, record, addr, now)
                bucket.entries[record.id] = contact
                bucket.last_changed = now
                return None
            if len(bucket.entries) < self.k:
                bucket.replacements.pop(record.id, None)
                bucket.entries[record.id] = Contact(record, addr, now, last_heard=now)
                bucket.last_changed = now
                self._closest_cache = None
                return None
            if index == len(self._buckets) - 1 and len(self._buckets) < ID_BITS:
                self._split()
                continue
            waiting = bucket.replacements.pop(record.id, None)
            if waiting is not None:
                self._refresh(waiting, record, addr, now)
            else:
                waiting = Contact(record, addr, now, last_heard=now)
            bucket.replacements[record.id] = waiting
            if len(bucket.replacements) > self.k:
                del bucket.replacements[next(iter(bucket.replacements))]
            oldest = next(iter(bucket.entries.values()))
            return oldest

    def failed(self, node_id: bytes) -> None:
        """A request to ``node_id`` timed out; replace it when it is stale and a replacement waits."""
        bucket = self._bucket_of(node_id)
        contact = bucket.entries.get(node_id)
        if contact is None:
            bucket.replacements.pop(node_id, None)
            return
        contact.failures += 1
        if (
            contact.failures >= self.stale_after and bucket.replacements
        ) or contact.failures >= self.drop_after:
            self.evict(node_id)

    def evict(self, node_id: bytes) -> None:
        """Drop ``node_id`` (it failed a ping-before-evict); the freshest replacement takes its place."""
        bucket = self._bucket_of(node_id)
        if bucket.entries.pop(node_id, None) is None:
            return
        self._closest_cache = None
        if bucket.replacements:
            newest = next(reversed(bucket.replacements))
            bucket.entries[newest] = bucket.replacements.pop(newest)

    def remove(self, node_id: bytes) -> None:
        bucket = self._bucket_of(node_id)
        if bucket.entries.pop(node_id, None) is not None:
            self._closest_cache = None
        bucket.replacements.pop(node_id, None)

    def _refresh(self, contact: Contact, record: NodeRecord, addr: Addr, now: float) -> None:
        if record.seq >= contact.record.seq:
            contact.record = record
        contact.addr = addr
        contact.last_seen = contact.last_heard = now
        contact.failures = 0

    def _index_of(self, node_id: bytes) -> int:
        return min(bucket_index(self.own_id, node_id), len(self._buckets) - 1)

    def _bucket_of(self, node_id: bytes) -> Bucket:
        return self._buckets[self._index_of(node_id)]

    def _split(self) -> None:
        old = self._buckets[-1]
        depth = len(self._buckets) - 1
        near = Bucket(old.last_changed)
        old_entries, old_replacements = old.entries, old.replacements
        old.entries, old.replacements = {}, {}
        self._buckets.append(near)
        for source, attr in ((old_entries, "entries"), (old_replacements, "replacements")):
            for node_id, contact in source.items():
                target = old if bucket_index(self.own_id, node_id) == depth else near
                getattr(target, attr)[node_id] = contact

    # -- persistence ----------------------------------------------------------------------

    def encode(self) -> bytes:
        """``u8 version ‖ u16le count ‖ count * (u16le size ‖ node_record)``, most recent first."""
        contacts = sorted(self, key=lambda c: -c.last_seen)[:0xFFFF]
        return b"".join(
            [bytes((TABLE_VERSION,)), _U16.pack(len(contacts))]
            + [_U16.pack(len(c.record.encoded)) + c.record.encoded for c in contacts]
        )

    @staticmethod
    def decode_records(data: bytes) -> list[NodeRecord]:
        """The node records of a persisted table; unverifiable records are skipped.

        They are candidates to contact, not contacts: each enters a table
        only when it answers again.
        """
        if len(data) < 3 or data[0] != TABLE_VERSION:
            raise DecodeError("routing table: bad header")
        (count,) = _U16.unpack_from(data, 1)
        offset, out = 3, []
        for _ in range(count):
            if offset + 2 > len(data):
                raise DecodeError("routing table: truncated")
            (size,) = _U16.unpack_from(data, offset)
            offset += 2
            if offset + size > len(data):
                raise DecodeError("routing table: truncated")
            with contextlib.suppress(DecodeError, VerificationError):
                out.append(NodeRecord.decode(data[offset : offset + size]))
            offset += size
        if offset != len(data):
            raise DecodeError("routing table: trailing bytes")
        return out


__all__ = ["Bucket", "Contact", "K", "RoutingTable"]
