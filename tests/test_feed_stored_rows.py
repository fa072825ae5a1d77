"""Rows read back from storage are checked: whatever a disk or an editor did to them,
opening a feed or a signed value raises a hyphal error (or works), never anything else."""

from __future__ import annotations

import sqlite3

import pytest
from hypothesis import assume, example, given
from hypothesis import strategies as st

from hyphal import KeyPair, errors
from hyphal.feed import Feed, SignedValueFeed
from hyphal.feed.bitfield import PAGE_BYTES
from hyphal.storage import SqliteStorage

WRITER = KeyPair(b"w" * 32)

cells = st.one_of(
    st.none(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False),
    st.text(max_size=20),
    st.binary(max_size=200),
    st.binary(min_size=PAGE_BYTES, max_size=PAGE_BYTES),
)

CORRUPTIONS = {
    "head": "UPDATE feeds SET head = ?",
    "manifest": "UPDATE feeds SET manifest = ?",
    "encrypted": "UPDATE feeds SET encrypted = ?",
    "root node": "UPDATE nodes SET node = ? WHERE idx = 7",
    "root index": "UPDATE nodes SET idx = ? WHERE idx = 7",
    "bitfield bits": "UPDATE bitfield SET bits = ?",
    "bitfield page": "UPDATE bitfield SET page = ?",
}


def written_feed() -> tuple[SqliteStorage, Feed]:
    storage = SqliteStorage(":memory:")
    feed = Feed.create(storage, WRITER)
    feed.append_batch([b"block %d" % i for i in range(8)])
    return storage, feed


def corrupt(storage: SqliteStorage, statement: str, value: object) -> None:
    try:
        storage._conn.execute(statement, (value,))
    except sqlite3.IntegrityError:
        assume(False)  # NOT NULL or a duplicate key: SQLite itself refuses the edit


@pytest.mark.parametrize("column", sorted(CORRUPTIONS))
@given(value=cells)
def test_a_corrupt_cell_only_raises_hyphal_errors(column: str, value: object) -> None:
    storage, feed = written_feed()
    corrupt(storage, CORRUPTIONS[column], value)
    try:
        reopened = Feed.open(storage, feed.key, keypair=WRITER)
        for i in range(8):
            reopened.has(i)
        reopened.missing()
    except errors.HyphalError:
        return


@given(value=cells)
@example(value=2**63 - 7)  # a file position the kernel refuses (EINVAL), once an OSError
def test_a_corrupt_block_never_reaches_a_reader(value: object) -> None:
    storage, feed = written_feed()
    corrupt(storage, "UPDATE blocks SET off = ? WHERE idx = 3", value)
    try:
        data = feed.get_nowait(3)
    except errors.HyphalError:
        return
    assert data == b"block 3"


@given(value=cells)
def test_a_corrupt_signed_value_only_raises_hyphal_errors(value: object) -> None:
    storage = SqliteStorage(":memory:")
    SignedValueFeed(storage, WRITER.public_key, keypair=WRITER).put(b"value")
    corrupt(storage, "UPDATE signed_values SET value = ?", value)
    try:
        reloaded = SignedValueFeed(storage, WRITER.public_key)
    except errors.HyphalError:
        return
    assert reloaded.value == b"value"


def test_the_corruptions_are_noticed() -> None:
    """The cases above can fail: these concrete edits must be refused."""
    for statement, value, error in [
        (CORRUPTIONS["head"], b"\x01garbage", errors.DecodeError),
        (CORRUPTIONS["manifest"], b"\x01\x01\x01" + bytes(32) + b"\x00", errors.DecodeError),
        (CORRUPTIONS["root node"], bytes(40), errors.VerificationError),
        (CORRUPTIONS["bitfield bits"], b"short", errors.DecodeError),
    ]:
        storage, feed = written_feed()
        storage._conn.execute(statement, (value,))
        with pytest.raises(error):
            Feed.open(storage, feed.key)
