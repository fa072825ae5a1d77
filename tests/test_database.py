"""The one SQLite opener: WAL, busy timeout, durability, and user_version schema migrations,
for the feed storage, the blob catalog and the DHT's record store."""

from __future__ import annotations

import pickle
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from hyphal import errors
from hyphal.blobs import BlobFormat, BlobStore
from hyphal.blobs.catalog import CATALOG_NAME
from hyphal.dht.sqlite_records import SqliteRecordStore, StoredRecord
from hyphal.storage.database import BUSY_TIMEOUT_MS, Schema, connect, open_database
from hyphal.storage.sqlite import SCHEMA_VERSION, SqliteStorage

V1 = "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL);"


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as c:
        return c.execute(f"PRAGMA {name}").fetchone()[0]


def set_user_version(path: Path, version: int) -> None:
    c = sqlite3.connect(path)
    try:
        c.execute(f"PRAGMA user_version = {version}")
        c.commit()
    finally:
        c.close()


def test_a_fresh_file_gets_the_schema_its_version_wal_and_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "db"
    conn = open_database(path, Schema("test", 1, V1), synchronous="FULL")
    try:
        assert conn.isolation_level is None
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        conn.execute("INSERT INTO items (name) VALUES ('a')")  # autocommit: visible to others at once
        assert sqlite3.connect(path).execute("SELECT name FROM items").fetchall() == [("a",)]
    finally:
        conn.close()
    assert pragma(path, "user_version") == 1
    assert pragma(path, "journal_mode") == "wal"  # persistent


def test_page_size_applies_to_a_new_file_only(tmp_path: Path) -> None:
    open_database(tmp_path / "db", Schema("test", 1, V1), page_size=8192).close()
    assert pragma(tmp_path / "db", "page_size") == 8192
    open_database(tmp_path / "db", Schema("test", 1, V1), page_size=65536).close()
    assert pragma(tmp_path / "db", "page_size") == 8192


def test_reopening_keeps_the_data_and_does_not_recreate(tmp_path: Path) -> None:
    schema = Schema("test", 1, V1)  # a plain CREATE TABLE: running it again would fail
    with open_database(tmp_path / "db", schema) as conn:  # the context manager only commits
        conn.execute("INSERT INTO items (name) VALUES ('kept')")
    conn.close()
    again = open_database(tmp_path / "db", schema)
    try:
        assert again.execute("SELECT name FROM items").fetchall() == [("kept",)]
        assert again.execute("PRAGMA user_version").fetchone()[0] == 1
    finally:
        again.close()


def test_an_older_version_is_migrated_in_order(tmp_path: Path) -> None:
    path = tmp_path / "db"
    conn = open_database(path, Schema("test", 1, V1))
    conn.execute("INSERT INTO items (name) VALUES ('x'), ('y')")
    conn.close()

    def fill_upper(conn: sqlite3.Connection) -> None:  # needs the column the step before adds
        conn.execute("UPDATE items SET upper = upper(name)")

    v3 = Schema(
        "test",
        3,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, upper TEXT)",
        migrations=("ALTER TABLE items ADD COLUMN upper TEXT", fill_upper),  # 1 -> 2, 2 -> 3
    )
    conn = open_database(path, v3)
    try:
        assert conn.execute("SELECT name, upper FROM items ORDER BY id").fetchall() == [
            ("x", "X"),
            ("y", "Y"),
        ]
    finally:
        conn.close()
    assert pragma(path, "user_version") == 3


def test_a_middle_version_runs_only_the_steps_it_lacks(tmp_path: Path) -> None:
    path = tmp_path / "db"
    open_database(
        path, Schema("test", 2, V1 + "CREATE TABLE two (x);", migrations=("CREATE TABLE two (x)",))
    ).close()
    ran: list[int] = []
    v4 = Schema(
        "test",
        4,
        "",
        migrations=(lambda c: ran.append(2), lambda c: ran.append(3), lambda c: ran.append(4)),
    )
    open_database(path, v4).close()
    assert ran == [3, 4]
    assert pragma(path, "user_version") == 4


def test_a_failed_migration_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "db"
    open_database(path, Schema("test", 1, V1)).close()

    def boom(conn: sqlite3.Connection) -> None:
        raise RuntimeError("migration failed")

    bad = Schema("test", 3, "", migrations=("ALTER TABLE items ADD COLUMN upper TEXT", boom))
    with pytest.raises(RuntimeError):
        open_database(path, bad)
    assert pragma(path, "user_version") == 1
    with sqlite3.connect(path) as c:
        assert [row[1] for row in c.execute("PRAGMA table_info(items)")] == ["id", "name"]


def test_a_version_before_the_first_migration_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    open_database(path, Schema("test", 1, V1)).close()
    with pytest.raises(errors.DecodeError, match="too old"):
        open_database(path, Schema("test", 3, V1, migrations=("SELECT 1",)))  # reads versions 2 and 3
    assert pragma(path, "user_version") == 1


def test_an_unversioned_file_is_stamped_not_recreated(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with sqlite3.connect(path) as c:  # written before user_version was used
        c.execute(V1)
        c.execute("INSERT INTO items (name) VALUES ('old')")
    schema = Schema(
        "test",
        2,
        "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, upper TEXT)",
        migrations=("ALTER TABLE items ADD COLUMN upper TEXT",),
        unversioned="CREATE TABLE IF NOT EXISTS items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)",
    )
    conn = open_database(path, schema)
    try:
        assert conn.execute("SELECT name, upper FROM items").fetchall() == [("old", None)]
    finally:
        conn.close()
    assert pragma(path, "user_version") == 2


def test_an_unversioned_file_of_a_store_that_always_versioned_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with sqlite3.connect(path) as c:
        c.execute("CREATE TABLE other (x)")
    with pytest.raises(errors.DecodeError, match="no schema version"):
        SqliteStorage(path)
    assert pragma(path, "user_version") == 0


def test_a_newer_file_is_refused_with_both_versions_and_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "db"
    open_database(path, Schema("test", 1, V1)).close()
    set_user_version(path, 5)
    with pytest.raises(errors.SchemaTooNew) as caught:
        open_database(path, Schema("test item list", 1, V1))
    e = caught.value
    assert (e.path, e.found, e.supported, e.what) == (str(path), 5, 1, "test item list")
    assert f"{path}: this test item list has schema version 5, newer than version 1" in str(e)
    assert isinstance(e, errors.DecodeError)  # what the feed storage raised for it before
    again = pickle.loads(pickle.dumps(e))
    assert (type(again), str(again), again.found) == (errors.SchemaTooNew, str(e), 5)
    assert pragma(path, "user_version") == 5


def test_bad_options_are_invalid(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="synchronous"):
        open_database(tmp_path / "db", Schema("test", 1, V1), synchronous="OFF")
    with pytest.raises(errors.InvalidInput):
        Schema("test", 0, V1)
    with pytest.raises(errors.InvalidInput):
        Schema("test", 2, V1, migrations=("SELECT 1", "SELECT 1"))


def test_a_helper_connection_gets_the_timeout_and_durability(tmp_path: Path) -> None:
    conn = connect(tmp_path / "db", synchronous="FULL")
    try:
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert conn.isolation_level is None
    finally:
        conn.close()


def test_a_trigger_in_a_script_stays_whole(tmp_path: Path) -> None:
    create = V1 + (
        "CREATE TABLE log (name TEXT);"
        "CREATE TRIGGER items_log AFTER INSERT ON items BEGIN INSERT INTO log VALUES (new.name); END;"
    )
    conn = open_database(tmp_path / "db", Schema("test", 1, create))
    try:
        conn.execute("INSERT INTO items (name) VALUES ('t')")
        assert conn.execute("SELECT name FROM log").fetchall() == [("t",)]
    finally:
        conn.close()


# -- the three stores ------------------------------------------------------------------------------


def _feeds(tmp_path: Path) -> tuple[Path, Callable[[], sqlite3.Connection], Callable[[], None], int]:
    storage = SqliteStorage(tmp_path / "feeds.db")
    return tmp_path / "feeds.db", lambda: storage._conn, storage.close, SCHEMA_VERSION


def _blobs(tmp_path: Path) -> tuple[Path, Callable[[], sqlite3.Connection], Callable[[], None], int]:
    store = BlobStore(tmp_path / "blobs", sync=False)
    return tmp_path / "blobs" / CATALOG_NAME, lambda: store._catalog._db, store.close, 1


def _dht(tmp_path: Path) -> tuple[Path, Callable[[], sqlite3.Connection], Callable[[], None], int]:
    store = SqliteRecordStore(str(tmp_path / "dht.db"))
    return tmp_path / "dht.db", lambda: store._db, store.close, 1


REOPEN: dict[str, Callable[[Path], object]] = {
    "feeds": lambda p: SqliteStorage(p),
    "blobs": lambda p: BlobStore(p.parent, sync=False),
    "dht": lambda p: SqliteRecordStore(str(p)),
}
STORES = {"feeds": _feeds, "blobs": _blobs, "dht": _dht}


@pytest.mark.parametrize("store", STORES)
def test_each_store_opens_in_wal_with_the_busy_timeout(tmp_path: Path, store: str) -> None:
    path, conn, close, version = STORES[store](tmp_path)
    try:
        assert conn().execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn().execute("PRAGMA busy_timeout").fetchone()[0] == BUSY_TIMEOUT_MS
        assert conn().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL: kept through kill -9
        assert conn().execute("PRAGMA user_version").fetchone()[0] == version
    finally:
        close()
    assert pragma(path, "user_version") == version


@pytest.mark.parametrize("store", STORES)
def test_each_store_refuses_a_file_of_a_newer_schema(tmp_path: Path, store: str) -> None:
    path, _, close, version = STORES[store](tmp_path)
    close()
    set_user_version(path, version + 1)
    with pytest.raises(errors.SchemaTooNew) as caught:
        REOPEN[store](path)
    assert (caught.value.path, caught.value.found, caught.value.supported) == (
        str(path),
        version + 1,
        version,
    )
    assert pragma(path, "user_version") == version + 1


def test_feed_and_dht_stores_keep_full_durability_when_asked(tmp_path: Path) -> None:
    feeds = SqliteStorage(tmp_path / "feeds.db", synchronous="FULL")
    dht = SqliteRecordStore(str(tmp_path / "dht.db"), synchronous="FULL")
    try:
        assert feeds._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
        assert dht._db.execute("PRAGMA synchronous").fetchone()[0] == 2
    finally:
        feeds.close()
        dht.close()


def test_an_unversioned_blob_catalog_is_stamped_with_its_blobs_and_tags(tmp_path: Path) -> None:
    with BlobStore(tmp_path, sync=False) as store:
        tag = store.import_bytes(b"from before user_version")
        store.set_tag("kept", tag.hash)
    set_user_version(tmp_path / CATALOG_NAME, 0)  # as every catalog was before
    with BlobStore(tmp_path, sync=False) as store:
        assert store.read(tag.hash) == b"from before user_version"
        assert store.tags() == {"kept": (tag.hash, BlobFormat.RAW)}
    assert pragma(tmp_path / CATALOG_NAME, "user_version") == 1


def test_an_unversioned_dht_store_is_stamped_with_its_records(tmp_path: Path) -> None:
    path = str(tmp_path / "dht.db")
    record = StoredRecord(1, b"k" * 32, b"", 3, b"value", 1e18)
    store = SqliteRecordStore(path)
    store.put(record)
    store.close()
    set_user_version(tmp_path / "dht.db", 0)
    store = SqliteRecordStore(path)
    try:
        assert list(store.records()) == [record]
    finally:
        store.close()
    assert pragma(tmp_path / "dht.db", "user_version") == 1
