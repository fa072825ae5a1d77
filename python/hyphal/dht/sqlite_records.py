"""The SQLite :class:`~hyphal.dht.record_store.RecordStore` of a DHT node (WAL mode, with expiry).

Kept apart from :mod:`hyphal.dht.record_store` so the sans-I/O node never
loads ``sqlite3``; the daemon passes a :class:`SqliteRecordStore` to the node.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from hyphal.dht.record_store import StoredRecord
from hyphal.storage.database import Schema, open_database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS dht_records (
    kind INTEGER NOT NULL, key BLOB NOT NULL, sub BLOB NOT NULL,
    seq INTEGER NOT NULL, value BLOB NOT NULL, expires REAL NOT NULL,
    PRIMARY KEY (kind, key, sub)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS dht_records_expires ON dht_records (expires);
"""


class SqliteRecordStore:
    """A :class:`RecordStore` in an SQLite file (WAL mode); each write commits at once."""

    def __init__(self, path: str, *, synchronous: str = "NORMAL") -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError("synchronous is NORMAL or FULL")

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


__all__ = ["SqliteRecordStore"]
