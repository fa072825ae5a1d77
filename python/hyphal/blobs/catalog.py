"""The blob store's catalog: the SQLite index of which blobs exist, in what state, and the named tags.

``blobs.db`` in the store's directory (docs/PROTOCOL.md §12.2)::

    blobs(hash, size, complete, bitfield)   a row per blob with files in data/
    tags(name, hash, format)                named tags: the roots GC keeps, with what they pin

A row is written only after the files it describes are durable (the store
syncs them first), so a committed row never points at bytes that are not
there. The catalog holds no lock of its own: the store calls it under its
lock, which also guards what lives only in memory (temp tags, open partial
blobs).
"""

from __future__ import annotations

import enum
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from hyphal.errors import DecodeError
from hyphal.storage.database import Schema, open_database

CATALOG_NAME = "blobs.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    hash BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    bitfield BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    format INTEGER NOT NULL
) WITHOUT ROWID;
"""

# Version 1 is the schema these files had before user_version was set.
CATALOG_SCHEMA = Schema("blob catalog", 1, _SCHEMA, unversioned=_SCHEMA)


class BlobFormat(enum.IntEnum):
    """What a tag pins: the blob alone, or a collection and every blob it names."""

    RAW = 0
    COLLECTION = 1


@dataclass(frozen=True)
class BlobInfo:
    hash: bytes
    size: int
    complete: bool


class BlobRow(NamedTuple):
    """A blob's row: its size, whether it is whole, and (when not) the groups held."""

    size: int
    complete: bool
    bitfield: bytes | None


class BlobCatalog:
    """The catalog in ``<directory>/blobs.db``; see the module docstring. Call it under the store's lock."""

    def __init__(self, directory: Path) -> None:
        # NORMAL: a commit survives a killed process; a power loss can only forget the last
        # commits, which forgets progress, since files are always synced before their row.
        self._db: sqlite3.Connection = open_database(
            directory / CATALOG_NAME, CATALOG_SCHEMA, synchronous="NORMAL", check_same_thread=False
        )

    def close(self) -> None:
        self._db.close()

    # -- blobs ---------------------------------------------------------------------------

    def row(self, h: bytes) -> BlobRow | None:
        row = self._db.execute("SELECT size, complete, bitfield FROM blobs WHERE hash = ?", (h,)).fetchone()
        if row is None:
            return None
        size, complete, bits = row
        if not isinstance(size, int) or size < 0:
            raise DecodeError(f"blob row {h.hex()} is malformed")
        return BlobRow(size, bool(complete), bits)

    def infos(self) -> list[BlobInfo]:
        rows = self._db.execute("SELECT hash, size, complete FROM blobs").fetchall()
        return [BlobInfo(bytes(h), s, bool(c)) for h, s, c in rows]

    def hashes(self) -> set[bytes]:
        return {bytes(h) for (h,) in self._db.execute("SELECT hash FROM blobs")}

    def put_partial(self, h: bytes, size: int, bitfield: bytes) -> None:
        """Record a partial blob (replacing any row of it) holding the groups in ``bitfield``."""
        self._db.execute(
            "INSERT OR REPLACE INTO blobs (hash, size, complete, bitfield) VALUES (?, ?, 0, ?)",
            (h, size, bitfield),
        )

    def put_complete(self, h: bytes, size: int) -> None:
        """Record a whole blob (replacing any row of it)."""
        self._db.execute(
            "INSERT OR REPLACE INTO blobs (hash, size, complete, bitfield) VALUES (?, ?, 1, NULL)",
            (h, size),
        )

    def set_bitfield(self, h: bytes, bitfield: bytes) -> None:
        self._db.execute("UPDATE blobs SET bitfield = ? WHERE hash = ?", (bitfield, h))

    def set_complete(self, h: bytes) -> None:
        self._db.execute("UPDATE blobs SET complete = 1, bitfield = NULL WHERE hash = ?", (h,))

    def delete(self, h: bytes) -> None:
        self._db.execute("DELETE FROM blobs WHERE hash = ?", (h,))

    # -- tags ------------------------------------------------------------------------------

    def set_tag(self, name: str, h: bytes, fmt: BlobFormat) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO tags (name, hash, format) VALUES (?, ?, ?)", (name, h, int(fmt))
        )

    def delete_tag(self, name: str) -> None:
        self._db.execute("DELETE FROM tags WHERE name = ?", (name,))

    def tags(self) -> dict[str, tuple[bytes, BlobFormat]]:
        rows = self._db.execute("SELECT name, hash, format FROM tags").fetchall()
        return {name: (bytes(h), BlobFormat(f)) for name, h, f in rows}


__all__ = ["CATALOG_NAME", "CATALOG_SCHEMA", "BlobCatalog", "BlobFormat", "BlobInfo", "BlobRow"]
