"""The SQLite storage backend: schema, pragmas, atomic writes, truncation, signed values."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import _core, errors
from hyphal.merkle import TreeNode
from hyphal.storage import FeedRecord, FeedWrite, SqliteStorage, Storage
from hyphal.storage.base import nodes_reaching
from hyphal.storage.sqlite import SCHEMA_VERSION, decode_node, encode_node

KEY_A, KEY_B = b"A" * 32, b"B" * 32


def record(key: bytes, head: bytes | None = None) -> FeedRecord:
    return FeedRecord(key, b"manifest-" + key[:1], False, head)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    with SqliteStorage(tmp_path / "db.sqlite") as s:
        s.create_feed(record(KEY_A))
        s.create_feed(record(KEY_B))
        yield s


def pragma(path: Path, name: str) -> object:
    with sqlite3.connect(path) as c:
        return c.execute(f"PRAGMA {name}").fetchone()[0]


def tree(n: int) -> tuple[list[bytes], list[TreeNode]]:
    blocks = [b"block %d" % i for i in range(n)]
    nodes, _ = _core.tree_append([], blocks)
    return blocks, nodes


def test_is_a_storage(storage: SqliteStorage) -> None:
    s: Storage = storage
    assert s.feed_keys() == [KEY_A, KEY_B]


def test_wal_mode_page_size_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    s = SqliteStorage(path)
    assert s._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert s._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    s.close()
    assert pragma(path, "journal_mode") == "wal"  # persistent
    assert pragma(path, "page_size") == 16384
    assert pragma(path, "user_version") == SCHEMA_VERSION == 2
    full = SqliteStorage(path, synchronous="FULL")
    assert full._conn.execute("PRAGMA synchronous").fetchone()[0] == 2
    full.close()


def test_page_size_is_chosen_at_creation(tmp_path: Path) -> None:
    SqliteStorage(tmp_path / "a", page_size=4096).close()
    assert pragma(tmp_path / "a", "page_size") == 4096
    SqliteStorage(tmp_path / "a", page_size=65536).close()  # an existing file keeps its size
    assert pragma(tmp_path / "a", "page_size") == 4096


@pytest.mark.parametrize("kwargs", [{"synchronous": "OFF"}, {"page_size": 1000}, {"page_size": 2**17}])
def test_bad_options_are_invalid(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(errors.InvalidInput):
        SqliteStorage(tmp_path / "db", **kwargs)  # type: ignore[arg-type]


def test_unknown_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "db"
    with sqlite3.connect(path) as c:
        c.execute("PRAGMA user_version = 99")
    with pytest.raises(errors.DecodeError):
        SqliteStorage(path)


def test_feeds_are_created_once_and_deleted_with_their_data(storage: SqliteStorage) -> None:
    with pytest.raises(errors.InvalidInput):
        storage.create_feed(record(KEY_A))
    blocks, nodes = tree(3)
    storage.write_feed(KEY_A, FeedWrite(blocks=blocks, nodes=nodes, bitfield={0: b"\x07"}, head=b"head"))
    assert storage.load_feed(KEY_A) == record(KEY_A, b"head")
    storage.delete_feed(KEY_A)
    assert storage.load_feed(KEY_A) is None
    assert storage.feed_keys() == [KEY_B]
    with pytest.raises(errors.InvalidInput):
        storage.get_block(KEY_A, 0)
    storage.delete_feed(KEY_A)  # no-op
    storage.create_feed(record(KEY_A))
    assert storage.get_blocks(KEY_A, 0, 10) == {}
    assert storage.get_nodes(KEY_A, [0, 1, 2]) == {}
    assert storage.bitfield_pages(KEY_A) == []


def test_write_roundtrip_and_feeds_are_isolated(storage: SqliteStorage) -> None:
    blocks, nodes = tree(5)
    big = TreeNode(99, b"\xff" * 32, 2**64 - 1)  # sizes use all 64 bits
    storage.write_feed(
        KEY_A, FeedWrite(block_start=0, blocks=blocks, nodes=[*nodes, big], bitfield={0: b"bits"})
    )
    assert storage.get_block(KEY_A, 4) == b"block 4"
    assert storage.get_block(KEY_A, 5) is None
    assert storage.get_blocks(KEY_A, 1, 3) == {1: b"block 1", 2: b"block 2"}
    assert storage.get_nodes(KEY_A, [n.index for n in nodes]) == {n.index: n for n in nodes}
    assert storage.get_nodes(KEY_A, [99]) == {99: big}
    assert storage.bitfield_pages(KEY_A) == [(0, b"bits")]
    assert storage.get_block(KEY_B, 0) is None
    assert storage.get_nodes(KEY_B, [0, 99]) == {}
    storage.write_feed(KEY_A, FeedWrite(bitfield={0: b""}))
    assert storage.bitfield_pages(KEY_A) == []


def test_many_node_lookups_are_chunked(storage: SqliteStorage) -> None:
    _, nodes = tree(700)
    storage.write_feed(KEY_A, FeedWrite(nodes=nodes))
    found = storage.get_nodes(KEY_A, [n.index for n in nodes])
    assert len(found) == len(nodes) > 1000


def test_blocks_already_stored_are_kept(storage: SqliteStorage) -> None:
    storage.write_feed(KEY_A, FeedWrite(block_start=3, blocks=[b"first"]))
    storage.write_feed(KEY_A, FeedWrite(block_start=3, blocks=[b"second"]))
    assert storage.get_block(KEY_A, 3) == b"first"


def test_a_failing_write_stores_nothing(storage: SqliteStorage) -> None:
    blocks, nodes = tree(4)
    # The bad bitfield value fails inside the transaction, after the blocks were written.
    bad = FeedWrite(blocks=blocks, nodes=nodes, bitfield={0: object()}, head=b"new head")  # type: ignore[dict-item]
    with pytest.raises(sqlite3.Error):
        storage.write_feed(KEY_A, bad)
    assert storage.get_blocks(KEY_A, 0, 10) == {}
    assert storage.get_nodes(KEY_A, [n.index for n in nodes]) == {}
    assert storage.bitfield_pages(KEY_A) == []
    assert storage.load_feed(KEY_A) == record(KEY_A)
    storage.write_feed(KEY_A, FeedWrite(blocks=blocks))  # and the storage still works
    assert len(storage.get_blocks(KEY_A, 0, 10)) == 4


def surviving(n_total: int, cut: int) -> set[int]:
    """Flat indexes of a tree of ``n_total`` blocks whose blocks all lie below ``cut``."""
    _, nodes = tree(n_total)
    return {n.index for n in nodes if _core.ft_block_range(n.index)[1] <= cut}


@pytest.mark.parametrize(("n", "cut"), [(13, 5), (16, 8), (16, 0), (16, 16), (33, 17), (7, 6), (64, 1)])
def test_truncation_drops_exactly_the_nodes_and_blocks_past_the_cut(
    storage: SqliteStorage, n: int, cut: int
) -> None:
    blocks, nodes = tree(n)
    storage.write_feed(KEY_A, FeedWrite(blocks=blocks, nodes=nodes))
    storage.write_feed(KEY_B, FeedWrite(blocks=blocks, nodes=nodes))
    storage.write_feed(KEY_A, FeedWrite(truncate_from=cut))
    left = set(storage.get_nodes(KEY_A, [x.index for x in nodes]))
    assert left == surviving(n, cut)
    assert set(storage.get_blocks(KEY_A, 0, n)) == set(range(cut))
    assert len(storage.get_blocks(KEY_B, 0, n)) == n  # the other feed is untouched


@given(st.integers(0, 300))
def test_nodes_reaching_matches_brute_force(length: int) -> None:
    first_gone, straddling = nodes_reaching(length)
    limit = 2 * length + 2 * 512
    expected = {x for x in range(limit) if _core.ft_block_range(x)[1] > length}
    got = {x for x in range(limit) if x >= first_gone} | set(straddling)
    assert got == expected


def test_everything_persists_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "db"
    blocks, nodes = tree(6)
    with SqliteStorage(path) as s:
        s.create_feed(record(KEY_A, b"h1"))
        s.write_feed(KEY_A, FeedWrite(blocks=blocks, nodes=nodes, bitfield={0: b"\x3f"}, head=b"h2"))
        assert s.put_signed_value(b"v" * 32, 3, b"value 3")
    with SqliteStorage(path) as s:
        assert s.load_feed(KEY_A) == record(KEY_A, b"h2")
        assert s.get_blocks(KEY_A, 0, 6) == dict(enumerate(blocks))
        assert s.get_nodes(KEY_A, [n.index for n in nodes]) == {n.index: n for n in nodes}
        assert s.bitfield_pages(KEY_A) == [(0, b"\x3f")]
        assert s.get_signed_value(b"v" * 32) == b"value 3"


def test_signed_values_only_move_forward(storage: SqliteStorage) -> None:
    vid = b"v" * 32
    assert storage.get_signed_value(vid) is None
    assert storage.put_signed_value(vid, 5, b"five")
    assert not storage.put_signed_value(vid, 5, b"other five")
    assert not storage.put_signed_value(vid, 4, b"four")
    assert storage.get_signed_value(vid) == b"five"
    assert storage.put_signed_value(vid, 6, b"six")
    assert storage.get_signed_value(vid) == b"six"
    assert storage.get_signed_value(b"w" * 32) is None


def test_closed_storage_refuses_use(storage: SqliteStorage) -> None:
    storage.close()
    storage.close()  # idempotent
    with pytest.raises(errors.InvalidInput):
        storage.write_feed(KEY_A, FeedWrite())
    with pytest.raises(errors.InvalidInput):
        storage.create_feed(record(b"C" * 32))


def test_background_checkpoints_keep_every_commit(tmp_path: Path) -> None:
    path = tmp_path / "db"
    chunk = [bytes([i]) * 1024 for i in range(64)]
    # Block data bypasses the WAL, so it takes many commits (each rewrites a few
    # pages) to reach 1000 pages of 4 KiB and wake the checkpointer.
    with SqliteStorage(path, page_size=4096) as s:
        s.create_feed(record(KEY_A))
        for n in range(300):
            s.write_feed(KEY_A, FeedWrite(block_start=64 * n, blocks=chunk))
        assert s._checkpointer is not None
        assert s._checkpointer._thread is not None
        assert len(s.get_blocks(KEY_A, 0, 100_000)) == 300 * 64
    with sqlite3.connect(path) as c:  # closing checkpointed everything into the database file
        assert c.execute("SELECT count(*) FROM blocks").fetchone()[0] == 300 * 64
        assert c.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_a_wal_past_its_limit_is_checkpointed_inline(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "db") as s:
        s.create_feed(record(KEY_A))
        assert s._checkpointer is not None
        s._checkpointer.wal_frames = 10**9  # as if the helper had fallen far behind
        s.write_feed(KEY_A, FeedWrite(blocks=[b"x"]))
        assert s._checkpointer.wal_frames == 0
        assert s.get_block(KEY_A, 0) == b"x"


def test_memory_databases_work(tmp_path: Path) -> None:
    s = SqliteStorage(":memory:")
    s.create_feed(record(KEY_A))
    s.write_feed(KEY_A, FeedWrite(blocks=[b"x"]))
    assert s.get_block(KEY_A, 0) == b"x"


# -- rows read back are checked --------------------------------------------------------

cells = st.one_of(
    st.none(), st.integers(-(2**63), 2**63 - 1), st.binary(max_size=60), st.text(max_size=10), st.floats()
)


@given(cells, cells)
def test_node_rows_decode_or_raise_decode_error(index: object, data: object) -> None:
    try:
        node = decode_node(index, data)
    except errors.DecodeError:
        return
    assert encode_node(node) == data


def test_corrupt_cells_are_decode_errors(storage: SqliteStorage) -> None:
    storage.write_feed(KEY_A, FeedWrite(blocks=[b"x"], nodes=tree(1)[1]))
    storage.put_signed_value(b"v" * 32, 1, b"x")
    c = storage._conn
    c.execute("UPDATE blocks SET off = 'text'")
    c.execute("UPDATE nodes SET node = x'00'")
    c.execute("UPDATE feeds SET encrypted = 7 WHERE key = ?", (KEY_A,))
    c.execute("UPDATE signed_values SET value = 42")
    for call in (
        lambda: storage.get_block(KEY_A, 0),
        lambda: storage.get_blocks(KEY_A, 0, 1),
        lambda: storage.get_nodes(KEY_A, [0]),
        lambda: storage.load_feed(KEY_A),
        lambda: storage.get_signed_value(b"v" * 32),
    ):
        with pytest.raises(errors.DecodeError):
            call()
