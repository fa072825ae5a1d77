"""Embedded SQLite storage (stdlib ``sqlite3``), in WAL mode.

Durability: ``synchronous="NORMAL"`` (the default) makes every committed
transaction survive a crash or kill of the process; a power loss or kernel
crash can lose the last transactions before a checkpoint, never corrupt the
database. ``synchronous="FULL"`` also fsyncs the WAL on every commit, so
commits survive power loss too, at the cost of one fsync per append.

Block data lives outside SQLite, in an append-only file beside the database
(``<path>-blocks``); the ``blocks`` table maps each block to its offset and
length there. SQLite would write every block byte twice (WAL, then the
checkpoint) through its page layer; the data file takes one ``pwrite`` per
batch. Data is written before the transaction that indexes it commits, so a
committed block's bytes are always there after a process crash; bytes of a
transaction that never committed are unreferenced garbage. For power loss,
the data file is fdatasync'ed before every WAL checkpoint hyphal runs (the
background, inline and closing ones in NORMAL) or before every commit (FULL),
so a durable index never points at unsynced data. (With
``background_checkpoint=False``, SQLite's own autocheckpoints do not wait for
the data file; after a power loss a block could then fail its leaf check,
which every read makes, and is refused rather than returned.)
Rewritten or truncated blocks leave garbage in the file (no compaction yet).

Throughput: one transaction per batch. Pages are 16 KiB by default: a 64 KiB block is a short overflow
chain instead of sixteen 4 KiB pages, while a one-block append still rewrites
only a few small pages into the WAL (64 KiB pages append bulk data ~15%
faster but halve the rate of tiny appends). WAL checkpoints (copying the WAL
into the database and fsyncing both) would otherwise run inside whichever
commit crosses the threshold; with ``background_checkpoint=True`` (the
default) a helper thread with its own connection runs them, so appends do not
wait for the disk. If the WAL still grows past ``wal_limit`` bytes, the next
commit checkpoints inline, which bounds the WAL.

The database is opened by :func:`hyphal.storage.database.open_database`,
which refuses a file of a newer schema (:class:`~hyphal.errors.SchemaTooNew`).

Schema (``PRAGMA user_version = 2``)::

    feeds(id INTEGER PRIMARY KEY, key BLOB UNIQUE, manifest BLOB, encrypted INTEGER, head BLOB NULL)
    blocks(feed, idx, off, len, PRIMARY KEY (feed, idx)) WITHOUT ROWID  /* [off, off+len) of the data file */
    nodes(feed, idx, node BLOB /* hash[32] ‖ u64le size */, PRIMARY KEY (feed, idx)) WITHOUT ROWID
    bitfield(feed, page, bits BLOB, PRIMARY KEY (feed, page))
    signed_values(id BLOB PRIMARY KEY, seq INTEGER, value BLOB) WITHOUT ROWID
"""

from __future__ import annotations

import itertools
import os
import sqlite3
import struct
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import IO

from typing_extensions import Buffer

from hyphal.errors import DecodeError, InvalidInput
from hyphal.merkle import TreeNode
from hyphal.storage.base import FeedRecord, FeedWrite, nodes_reaching
from hyphal.storage.database import Schema, Synchronous, connect, open_database

SCHEMA_VERSION = 2
DEFAULT_PAGE_SIZE = 16384
DEFAULT_CACHE_KIB = 64 * 1024
DEFAULT_WAL_LIMIT = 128 * 2**20
_NODE = struct.Struct("<32sQ")
_MAX_BLOCK_ROW = 64 * 2**20  # far above any valid block; bounds what a corrupt row can make us read
_MAX_DATA_OFFSET = 2**62  # far beyond any real data file; keeps offset + size a valid file position


_WRITE_GROUP = 16  # buffers per pwritev: about 1 MiB of 64 KiB blocks, cache-sized


def _write_all(fd: int, blocks: Sequence[Buffer], offset: int) -> None:
    """Write ``blocks`` back to back at ``offset`` without joining them first."""
    views = [memoryview(b).cast("B") for b in blocks]
    for first in range(0, len(views), _WRITE_GROUP):
        group = views[first : first + _WRITE_GROUP]
        while group:
            n = os.pwritev(fd, group, offset)
            if n == 0 and any(v.nbytes for v in group):
                raise OSError("pwritev wrote nothing")
            offset += n
            # A short write: drop what went out and go on from there.
            while group and n >= group[0].nbytes:
                n -= group[0].nbytes
                group.pop(0)
            if group and n:
                group[0] = group[0][n:]


_SQL_VARIABLES = 500  # well below SQLite's limit on bound parameters per statement

_SCHEMA = """
CREATE TABLE feeds (
    id INTEGER PRIMARY KEY,
    key BLOB NOT NULL UNIQUE,
    manifest BLOB NOT NULL,
    encrypted INTEGER NOT NULL,
    head BLOB
);
CREATE TABLE blocks (
    feed INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    off INTEGER NOT NULL,
    len INTEGER NOT NULL,
    PRIMARY KEY (feed, idx)
) WITHOUT ROWID;
CREATE TABLE nodes (
    feed INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    node BLOB NOT NULL,
    PRIMARY KEY (feed, idx)
) WITHOUT ROWID;
CREATE TABLE bitfield (
    feed INTEGER NOT NULL,
    page INTEGER NOT NULL,
    bits BLOB NOT NULL,
    PRIMARY KEY (feed, page)
);
CREATE TABLE signed_values (
    id BLOB PRIMARY KEY,
    seq INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

# Version 1 kept block bytes inside the database; nothing migrates it to the data file.
FEED_SCHEMA = Schema("feed storage", SCHEMA_VERSION, _SCHEMA)


def encode_node(node: TreeNode) -> bytes:
    return _NODE.pack(node.hash, node.size)


def decode_node(index: object, data: object) -> TreeNode:
    """A node row read back; :class:`DecodeError` when it is not one."""
    if not isinstance(index, int) or not isinstance(data, bytes) or len(data) != _NODE.size:
        raise DecodeError(f"storage: node row {index!r} is malformed")
    hash_, size = _NODE.unpack(data)
    try:
        return TreeNode(index, hash_, size)
    except InvalidInput as e:
        raise DecodeError(f"storage: node row {index}: {e}") from None


class _Checkpointer:
    """Runs passive WAL checkpoints on a helper thread with its own connection."""

    def __init__(self, path: str, synchronous: Synchronous, data_fd: int) -> None:
        self._path, self._synchronous = path, synchronous
        self._data_fd = data_fd
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.wal_frames = 0  # frames in the WAL as of the last checkpoint

    def wake(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="hyphal-sqlite-checkpoint", daemon=True)
            self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        if self._thread is not None:
            self._stopping = True
            self._wake.set()
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        conn = connect(self._path, synchronous=self._synchronous)
        try:
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                # Block data before the index that points at it becomes durable.
                os.fdatasync(self._data_fd)
                row = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                self.wal_frames = int(row[1])
        finally:
            conn.close()


class SqliteStorage:
    """A :class:`~hyphal.storage.base.Storage` in one SQLite database file.

    ``page_size`` applies when the file is created. Use from one thread; the
    checkpoint helper thread only ever checkpoints.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Synchronous = "NORMAL",
        page_size: int = DEFAULT_PAGE_SIZE,
        cache_kib: int = DEFAULT_CACHE_KIB,
        background_checkpoint: bool = True,
        wal_limit: int = DEFAULT_WAL_LIMIT,
    ) -> None:
        if synchronous not in ("NORMAL", "FULL"):
            raise InvalidInput("synchronous is 'NORMAL' or 'FULL'")
        if page_size not in {1 << k for k in range(9, 17)}:
            raise InvalidInput("page_size is a power of two from 512 to 65536")
        self.path = os.fspath(path)
        self._synchronous = synchronous
        self._data_file: IO[bytes] | None = None
        if self.path == ":memory:":
            self._data_file = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the storage
            self._data_fd = self._data_file.fileno()
        else:
            self._data_fd = os.open(self.path + "-blocks", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            self._conn = open_database(self.path, FEED_SCHEMA, synchronous=synchronous, page_size=page_size)
        except BaseException:
            self._close_data()
            raise
        self._conn.execute(f"PRAGMA cache_size={-cache_kib}")
        self._closed = False
        self._ids: dict[bytes, int] = {}
        self._page_size = int(self._conn.execute("PRAGMA page_size").fetchone()[0])
        self._wal_limit = wal_limit
        self._unchecked_bytes = 0
        self._checkpointer: _Checkpointer | None = None
        if background_checkpoint and self.path != ":memory:":
            self._conn.execute("PRAGMA wal_autocheckpoint=0")
            # After a checkpoint restarts the WAL, shrink the file back to the limit.
            self._conn.execute(f"PRAGMA journal_size_limit={int(wal_limit)}")
            self._checkpointer = _Checkpointer(self.path, synchronous, self._data_fd)

    # -- plumbing ---------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        if self._closed:
            raise InvalidInput("storage is closed")
        if self._conn.in_transaction:
            yield self._conn
            return
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _after_commit(self, written: int) -> None:
        if self._checkpointer is None:
            return
        # Every commit rewrites a few whole pages besides its payload.
        self._unchecked_bytes += written + 4 * self._page_size
        if self._checkpointer.wal_frames * self._page_size > self._wal_limit:
            # The helper cannot keep up: checkpoint here so the WAL restarts.
            os.fdatasync(self._data_fd)
            self._conn.execute("PRAGMA wal_checkpoint(RESTART)")
            self._checkpointer.wal_frames = 0
            self._unchecked_bytes = 0
        elif self._unchecked_bytes >= 1000 * self._page_size:  # SQLite's own autocheckpoint point
            self._unchecked_bytes = 0
            self._checkpointer.wake()

    def _feed_id(self, key: bytes) -> int:
        found = self._ids.get(key)
        if found is None:
            if self._closed:
                raise InvalidInput("storage is closed")
            row = self._conn.execute("SELECT id FROM feeds WHERE key = ?", (key,)).fetchone()
            if row is None:
                raise InvalidInput(f"storage: no feed {key.hex()[:16]}…")
            found = self._ids[key] = int(row[0])
        return found

    # -- feeds ------------------------------------------------------------------

    def create_feed(self, record: FeedRecord) -> None:
        with self._transaction() as c:
            if c.execute("SELECT 1 FROM feeds WHERE key = ?", (record.key,)).fetchone():
                raise InvalidInput(f"storage: feed {record.key.hex()[:16]}… already exists")
            c.execute(
                "INSERT INTO feeds (key, manifest, encrypted, head) VALUES (?, ?, ?, ?)",
                (record.key, record.manifest, int(record.encrypted), record.head),
            )

    def load_feed(self, key: bytes) -> FeedRecord | None:
        row = self._conn.execute(
            "SELECT manifest, encrypted, head FROM feeds WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        manifest, encrypted, head = row
        if not isinstance(manifest, bytes) or encrypted not in (0, 1) or not isinstance(head, bytes | None):
            raise DecodeError("storage: feed row is malformed")
        return FeedRecord(key, manifest, bool(encrypted), head)

    def feed_keys(self) -> list[bytes]:
        return [bytes(k) for (k,) in self._conn.execute("SELECT key FROM feeds ORDER BY id")]

    def delete_feed(self, key: bytes) -> None:
        with self._transaction() as c:
            row = c.execute("SELECT id FROM feeds WHERE key = ?", (key,)).fetchone()
            if row is None:
                return
            for table in ("blocks", "nodes", "bitfield"):
                c.execute(f"DELETE FROM {table} WHERE feed = ?", row)
            c.execute("DELETE FROM feeds WHERE id = ?", row)
        self._ids.pop(key, None)

    def write_feed(self, key: bytes, write: FeedWrite) -> None:
        feed = self._feed_id(key)
        written = 0
        with self._transaction() as c:
            if write.truncate_from is not None:
                first_gone, straddling = nodes_reaching(write.truncate_from)
                c.execute("DELETE FROM blocks WHERE feed = ? AND idx >= ?", (feed, write.truncate_from))
                c.execute("DELETE FROM nodes WHERE feed = ? AND idx >= ?", (feed, first_gone))
                c.executemany("DELETE FROM nodes WHERE feed = ? AND idx = ?", ((feed, i) for i in straddling))
            if write.blocks:
                start = write.block_start
                # Under the write lock: another process may have appended since we looked.
                offset = os.fstat(self._data_fd).st_size
                sizes = [memoryview(b).nbytes for b in write.blocks]
                _write_all(self._data_fd, write.blocks, offset)
                if self._synchronous == "FULL":
                    os.fdatasync(self._data_fd)
                rows = zip(
                    itertools.repeat(feed),
                    range(start, start + len(sizes)),
                    itertools.accumulate(sizes[:-1], initial=offset),
                    sizes,
                    strict=False,  # repeat() is endless; the other three have one item per block
                )
                c.executemany("INSERT OR IGNORE INTO blocks (feed, idx, off, len) VALUES (?, ?, ?, ?)", rows)
                # The index rows are what the WAL carries now; the data went to the file.
                written += 32 * len(sizes)
            if write.nodes:
                c.executemany(
                    "INSERT OR REPLACE INTO nodes (feed, idx, node) VALUES (?, ?, ?)",
                    ((feed, n.index, _NODE.pack(n.hash, n.size)) for n in write.nodes),
                )
            for page, bits in write.bitfield.items():
                if bits:
                    c.execute(
                        "INSERT OR REPLACE INTO bitfield (feed, page, bits) VALUES (?, ?, ?)",
                        (feed, page, bits),
                    )
                else:
                    c.execute("DELETE FROM bitfield WHERE feed = ? AND page = ?", (feed, page))
            if write.head is not None:
                c.execute("UPDATE feeds SET head = ? WHERE id = ?", (write.head, feed))
        self._after_commit(written)

    def get_block(self, key: bytes, index: int) -> bytes | None:
        row = self._conn.execute(
            "SELECT off, len FROM blocks WHERE feed = ? AND idx = ?", (self._feed_id(key), index)
        ).fetchone()
        if row is None:
            return None
        return self._read_block(index, row[0], row[1])

    def get_blocks(self, key: bytes, start: int, end: int) -> dict[int, bytes]:
        rows = self._conn.execute(
            "SELECT idx, off, len FROM blocks WHERE feed = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (self._feed_id(key), start, end),
        )
        return {index: self._read_block(index, off, size) for index, off, size in rows}

    def _read_block(self, index: object, off: object, size: object) -> bytes:
        if not (
            isinstance(off, int)
            and isinstance(size, int)
            and 0 <= size <= _MAX_BLOCK_ROW
            and 0 <= off <= _MAX_DATA_OFFSET - size  # the kernel refuses offsets past 2^63
        ):
            raise DecodeError(f"storage: block {index} has a malformed location")
        data = os.pread(self._data_fd, size, off)
        if len(data) != size:
            raise DecodeError(f"storage: block {index} lies past the end of the data file")
        return data

    def get_nodes(self, key: bytes, indexes: Sequence[int]) -> dict[int, TreeNode]:
        feed = self._feed_id(key)
        out: dict[int, TreeNode] = {}
        for at in range(0, len(indexes), _SQL_VARIABLES):
            chunk = list(indexes[at : at + _SQL_VARIABLES])
            marks = ",".join("?" * len(chunk))
            query = f"SELECT idx, node FROM nodes WHERE feed = ? AND idx IN ({marks})"
            for index, data in self._conn.execute(query, (feed, *chunk)):
                out[index] = decode_node(index, data)
        return out

    def bitfield_pages(self, key: bytes) -> list[tuple[object, object]]:
        rows = self._conn.execute(
            "SELECT page, bits FROM bitfield WHERE feed = ? ORDER BY page", (self._feed_id(key),)
        )
        return [(page, bits) for page, bits in rows]

    # -- signed values ---------------------------------------------------------------

    def get_signed_value(self, value_id: bytes) -> bytes | None:
        row = self._conn.execute("SELECT value FROM signed_values WHERE id = ?", (value_id,)).fetchone()
        if row is None:
            return None
        if not isinstance(row[0], bytes):
            raise DecodeError("storage: signed value is not a BLOB")
        return row[0]

    def put_signed_value(self, value_id: bytes, seq: int, encoded: bytes) -> bool:
        with self._transaction() as c:
            stored = c.execute(
                "INSERT INTO signed_values (id, seq, value) VALUES (?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET seq = excluded.seq, value = excluded.value "
                "WHERE excluded.seq > signed_values.seq",
                (value_id, seq, encoded),
            ).rowcount
        self._after_commit(len(encoded))
        return stored == 1

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._checkpointer is not None:
            self._checkpointer.stop()
        # Closing the last connection checkpoints the WAL: block bytes first.
        if self._data_file is None:
            os.fdatasync(self._data_fd)
        self._conn.close()
        self._close_data()

    def _close_data(self) -> None:
        if self._data_file is not None:
            self._data_file.close()
        else:
            os.close(self._data_fd)

    def __enter__(self) -> SqliteStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SqliteStorage({self.path!r})"


__all__ = [
    "DEFAULT_PAGE_SIZE",
    "FEED_SCHEMA",
    "SCHEMA_VERSION",
    "SqliteStorage",
    "Synchronous",
    "decode_node",
    "encode_node",
]
