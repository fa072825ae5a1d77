"""Where a DHT node keeps the records it holds: in memory or in SQLite, with expiry.

A store keeps bytes and checks nothing: the node verifies every record
*before* it calls :meth:`RecordStore.put`. One row is one (kind, key, sub):
``sub`` is the announcer's public key for announces and empty otherwise, so a
topic holds one announce per announcer. ``seq`` orders versions (a signed
value's seq, an announce's issue time). Extensions (the secret store) use
their own kinds from 16 up.
"""

from __future__ import annotations

import sqlite3
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


_SCHEMA = """
CREATE TABLE IF NOT EXISTS dht_records (
    kind INTEGER NOT NULL, key BLOB NOT NULL, sub BLOB NOT NULL,
    seq INTEGER NOT NULL, value BLOB NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (kind, key, sub)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dht_records_expires ON dht_records (expires);
"""


class SqliteStore:
    """A :class:`RecordStore` in an SQLite file (WAL mode); each write commits at once."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous is NORMAL or FULL")
        from hyphal.storage.database import Schema, open_database

        # Version 1 is the schema these files had before user_version was set.
        schema = Schema("DHT record store", 1, _SCHEMA, unversioned=_SCHEMA)
        self._db: sqlite3.Connection = open_database(
            path, schema, synchronous=synchronous, check_same_thread=False
        )

    def get(self, kind: int, key: bytes) -> list[StoredRecord]:
        rows = self._db.execute(
            "SELECT sub, seq, value, expires FROM dht_records WHERE kind = ? AND key = ?", (kind, key)
        ).fetchall()
        return [StoredRecord(kind, key, bytes(s), q, bytes(v), e) for s, q, v, e in rows]

    def get_one(self, kind: int, key: bytes, sub: bytes = b"") -> StoredRecord | None:
        row = self._db.execute(
            "SELECT seq, value, expires FROM dht_records WHERE kind = ? AND key = ? AND sub = ?",
            (kind, key, sub),
        ).fetchone()
        return None if row is None else StoredRecord(kind, key, sub, row[0], bytes(row[1]), row[2])

    def put(self, record: StoredRecord) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO dht_records VALUES (?, ?, ?, ?, ?, ?)",
            (record.kind, record.key, record.sub, record.seq, record.value, record.expires),
        )

    def delete(self, kind: int, key: bytes, sub: bytes = b"") -> None:
        self._db.execute("DELETE FROM dht_records WHERE kind = ? AND key = ? AND sub = ?", (kind, key, sub))

    def expire(self, now: float) -> int:
        return self._db.execute("DELETE FROM dht_records WHERE expires <= ?", (now,)).rowcount

    def records(self) -> Iterator[StoredRecord]:
        rows = self._db.execute("SELECT kind, key, sub, seq, value, expires FROM dht_records").fetchall()
        for k, key, s, q, v, e in rows:
            yield StoredRecord(k, bytes(key), bytes(s), q, bytes(v), e)

    def __len__(self) -> int:
        count: int = self._db.execute("SELECT COUNT(*) FROM dht_records").fetchone()[0]
        return count

    def close(self) -> None:
        self._db.close()


__all__ = ["MemoryStore", "RecordKind", "RecordStore", "SqliteStore", "StoredRecord"]
