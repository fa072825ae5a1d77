"""Opening hyphal's SQLite database files: one way, for every store that keeps one.

The feed storage (:mod:`hyphal.storage.sqlite`), the blob catalog
(:mod:`hyphal.blobs.catalog`) and the DHT's record store
(:mod:`hyphal.dht.sqlite_records`, which the secret store writes through) each open
their file with :func:`open_database`. It gives every connection the same
footing:

- autocommit mode (``isolation_level=None``): stores issue their own
  ``BEGIN IMMEDIATE`` where a change spans statements;
- WAL journaling, so readers never block the writer;
- a busy timeout, so a second process (the CLI next to a daemon, the feed
  storage's checkpoint thread) waits for the write lock instead of failing;
- ``synchronous`` as the store chooses: ``NORMAL`` keeps every committed
  transaction through a killed process (in WAL mode the commit is in the WAL
  file before ``COMMIT`` returns) and can lose only the last ones to a power
  loss; ``FULL`` also fsyncs the WAL on every commit.
- the schema, versioned by ``PRAGMA user_version``: see :class:`Schema`.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from hyphal.errors import DecodeError, InvalidInput, SchemaTooNew

Synchronous = Literal["NORMAL", "FULL"]
BUSY_TIMEOUT_MS = 10_000
"""How long a statement waits for another connection's lock before it fails."""

Migration = str | Callable[[sqlite3.Connection], None]
"""One schema step: SQL statements, or a function given the connection (inside the transaction)."""


@dataclass(frozen=True, slots=True)
class Schema:
    """What a store's database holds, and how a file written by an older version becomes it.

    - ``what`` names the contents in errors (``"blob catalog"``).
    - ``version`` is the schema this code reads and writes, 1 or more.
    - ``create`` makes that schema in an empty file.
    - ``migrations`` are the steps up to ``version``, oldest first: the last
      takes ``version - 1`` to ``version``, the one before it ``version - 2``
      to ``version - 1``, and so on. A file older than the first step can no
      longer be read (:class:`~hyphal.errors.DecodeError`).
    - ``unversioned`` brings a file written before the store set
      ``user_version`` (its tables there, its version 0) to version 1; such a
      file is stamped, never recreated. ``None`` when the store always set it,
      so a version-0 file with tables is not one of its files.
    """

    what: str
    version: int
    create: str
    migrations: Sequence[Migration] = ()
    unversioned: Migration | None = None

    def __post_init__(self) -> None:
        if self.version < 1 or len(self.migrations) >= self.version:
            raise InvalidInput("a schema has version >= 1 and at most version - 1 migrations")

    @property
    def oldest(self) -> int:
        """The oldest version a file may have and still be migrated."""
        return self.version - len(self.migrations)


def connect(
    path: str | os.PathLike[str], *, synchronous: str = "NORMAL", check_same_thread: bool = True
) -> sqlite3.Connection:
    """A connection in autocommit mode with the busy timeout and ``synchronous`` set; no schema.

    For a helper connection to a file :func:`open_database` has already opened
    (the feed storage's checkpoint thread).
    """
    if synchronous not in ("NORMAL", "FULL"):
        raise InvalidInput("synchronous is 'NORMAL' or 'FULL'")
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=check_same_thread)
    try:
        conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        conn.execute(f"PRAGMA synchronous={synchronous}")
    except BaseException:
        conn.close()
        raise
    return conn


def open_database(
    path: str | os.PathLike[str],
    schema: Schema,
    *,
    synchronous: str = "NORMAL",
    check_same_thread: bool = True,
    page_size: int | None = None,
) -> sqlite3.Connection:
    """Open (or create) the database at ``path`` holding ``schema``, in WAL mode, migrated.

    ``page_size`` applies only when the file is new. A file written by a newer
    schema raises :class:`~hyphal.errors.SchemaTooNew` and is left untouched.
    """
    conn = connect(path, synchronous=synchronous, check_same_thread=check_same_thread)
    name = os.fspath(path)
    try:
        found = _user_version(conn)
        if found > schema.version:
            raise SchemaTooNew(name, found, schema.version, schema.what)
        if found == 0 and page_size is not None:
            # page_size only takes effect before the first table (and before WAL mode).
            conn.execute(f"PRAGMA page_size={int(page_size)}")
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if mode not in ("wal", "memory"):  # ":memory:" databases have no WAL, and need none
            raise InvalidInput(f"{name}: cannot use WAL mode here (got {mode})")
        if found != schema.version:
            _upgrade(conn, name, schema)
    except BaseException:
        conn.close()
        raise
    return conn


def _user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _upgrade(conn: sqlite3.Connection, name: str, schema: Schema) -> None:
    """Create, stamp or migrate the schema, all in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        # Re-read under the write lock: another process may have just done this.
        found = _user_version(conn)
        if found > schema.version:
            raise SchemaTooNew(name, found, schema.version, schema.what)
        if found == schema.version:
            conn.execute("ROLLBACK")
            return
        if found == 0:
            tables = conn.execute("SELECT count(*) FROM sqlite_master WHERE type = 'table'").fetchone()[0]
            if not tables:
                _apply(conn, schema.create)
                found = schema.version
            elif schema.unversioned is None:
                raise DecodeError(f"{name}: has tables but no schema version; not a {schema.what}")
            else:
                _apply(conn, schema.unversioned)
                found = 1
        if found < schema.oldest:
            raise DecodeError(
                f"{name}: {schema.what} schema version {found} is too old to migrate "
                f"(the oldest this hyphal reads is {schema.oldest})"
            )
        for migration in schema.migrations[found - schema.oldest :]:
            _apply(conn, migration)
        conn.execute(f"PRAGMA user_version={schema.version}")
    except BaseException:
        if conn.in_transaction:  # some errors end the transaction themselves
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def _apply(conn: sqlite3.Connection, migration: Migration) -> None:
    if callable(migration):
        migration(conn)
        return
    # Not executescript: it would commit the transaction this runs in.
    for statement in _statements(migration):
        conn.execute(statement)


def _statements(script: str) -> Iterator[str]:
    """The statements of ``script``, split where SQLite says one is complete (so triggers stay whole)."""
    pending = ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \t\r\n;"):
                yield pending
            pending = ""
    if pending.strip(" \t\r\n;"):
        yield pending


__all__ = ["BUSY_TIMEOUT_MS", "Migration", "Schema", "Synchronous", "connect", "open_database"]
