"""The interface of a DHT node's record store, and the in-memory store (SQLite: :mod:`.store`).

A store keeps bytes and checks nothing: the node verifies every record
*before* it calls :meth:`RecordStore.put`. One row is one (kind, key, sub):
``sub`` is the announcer's public key for announces and empty otherwise, so a
topic holds one announce per announcer. ``seq`` orders versions (a signed
value's seq, an announce's issue time). Extensions (the secret store) use
their own kinds from 16 up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import Protocol


class RecordKind(IntEnum):
    IMMUTABLE = 1
    MUTABLE = 2
    ANNOUNCE = 3


@dataclass(frozen=True, slots=True)
class StoredRecord:
    kind: int
    key: bytes
    sub: bytes
    seq: int
    value: bytes
    expires: float


class RecordStore(Protocol):
    def get(self, kind: int, key: bytes) -> list[StoredRecord]:
        """Every unexpired-or-not row under (kind, key); callers check ``expires``."""
        ...

    def get_one(self, kind: int, key: bytes, sub: bytes = b"") -> StoredRecord | None: ...

    def put(self, record: StoredRecord) -> None:
        """Insert or replace the row of (kind, key, sub)."""
        ...

    def delete(self, kind: int, key: bytes, sub: bytes = b"") -> None: ...

    def expire(self, now: float) -> int:
        """Delete rows whose ``expires`` has passed; returns how many."""
        ...

    def records(self) -> Iterator[StoredRecord]:
        """Every row (for re-replication), in no particular order."""
        ...

    def __len__(self) -> int: ...

    def close(self) -> None: ...


class MemoryStore:
    """A :class:`RecordStore` in a dict; lost on exit."""

    def __init__(self) -> None:
        self._rows: dict[tuple[int, bytes], dict[bytes, StoredRecord]] = {}
        self._count = 0

    def get(self, kind: int, key: bytes) -> list[StoredRecord]:
        return list(self._rows.get((kind, key), {}).values())

    def get_one(self, kind: int, key: bytes, sub: bytes = b"") -> StoredRecord | None:
        return self._rows.get((kind, key), {}).get(sub)

    def put(self, record: StoredRecord) -> None:
        subs = self._rows.setdefault((record.kind, record.key), {})
        self._count += record.sub not in subs
        subs[record.sub] = record

    def delete(self, kind: int, key: bytes, sub: bytes = b"") -> None:
        subs = self._rows.get((kind, key))
        if subs is not None and subs.pop(sub, None) is not None:
            self._count -= 1
            if not subs:
                del self._rows[(kind, key)]

    def expire(self, now: float) -> int:
        dead = [r for subs in self._rows.values() for r in subs.values() if r.expires <= now]
        for r in dead:
            self.delete(r.kind, r.key, r.sub)
        return len(dead)

    def records(self) -> Iterator[StoredRecord]:
        for subs in list(self._rows.values()):
            yield from list(subs.values())

    def __len__(self) -> int:
        return self._count

    def close(self) -> None:
        self._rows.clear()
        self._count = 0


__all__ = ["MemoryStore", "RecordKind", "RecordStore", "StoredRecord"]
