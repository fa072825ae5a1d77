"""Repo operations: strict encoding, safe names, the collection they spell."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.errors import DecodeError, InvalidInput
from hyphal.groups.keys import WRAPPED_KEY_SIZE
from hyphal.groups.messages import MAX_NAME_BYTES, Delete, Put, check_name, decode_op
from hyphal.groups.repo import Collection

H1, H2 = bytes(range(32)), bytes(range(1, 33))

names = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"), min_size=1, max_size=30
).filter(lambda n: n not in (".", "..") and check_name_ok(n))


def check_name_ok(name: str) -> bool:
    try:
        check_name(name)
    except InvalidInput:
        return False
    return True


@settings(max_examples=200, deadline=None)
@given(
    name=names,
    size=st.integers(0, 2**63 - 1),
    mtime=st.integers(0, 2**63 - 1),
    key=st.one_of(st.none(), st.binary(min_size=WRAPPED_KEY_SIZE, max_size=WRAPPED_KEY_SIZE)),
)
def test_put_and_delete_round_trip(name: str, size: int, mtime: int, key: bytes | None) -> None:
    put = Put(name, H1, size, mtime, key)
    assert decode_op(put.encode()) == put
    assert decode_op(Delete(name).encode()) == Delete(name)


def test_put_layout() -> None:
    assert (
        Put("a/b", H1, 5, 7).encode()
        == b"\x01\x03\x00a/b" + H1 + (5).to_bytes(8, "little") + (7).to_bytes(8, "little") + b"\x00"
    )
    assert Delete("x").encode() == b"\x02\x01\x00x"


@pytest.mark.parametrize(
    "name",
    [
        "",
        "/abs",
        "a//b",
        "a/./b",
        "../up",
        "a/..",
        "back\\slash",
        "nul\x00",
        "tab\t",
        "x" * (MAX_NAME_BYTES + 1),
    ],
)
def test_unsafe_names_are_refused_on_both_sides(name: str) -> None:
    with pytest.raises(InvalidInput):
        check_name(name)
    raw = name.encode("utf-8")
    with pytest.raises(DecodeError):
        decode_op(b"\x02" + len(raw).to_bytes(2, "little") + raw)


def test_non_nfc_names_are_refused() -> None:
    with pytest.raises(InvalidInput, match="NFC"):
        check_name("e\u0301")  # "é" decomposed
    assert check_name("\u00e9") == "\u00e9"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x01",
        b"\x03\x01\x00x",  # unknown kind
        b"\x02\x05\x00ab",  # truncated name
        b"\x02\x01\x00xy",  # trailing byte
        b"\x02\x01\x00\xff",  # not UTF-8
        b"\x01\x01\x00x" + H1 + bytes(16) + b"\x02",  # unknown flag
        b"\x01\x01\x00x" + H1 + bytes(16) + b"\x01" + bytes(WRAPPED_KEY_SIZE - 1),  # truncated key
        b"\x01\x01\x00x" + H1 + (2**63).to_bytes(8, "little") + bytes(8) + b"\x00",  # size too big
    ],
)
def test_malformed_operations_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_op(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_is_refused_or_decodes_canonically(data: bytes) -> None:
    try:
        op = decode_op(data)
    except DecodeError:
        return
    assert op.encode() == data  # one encoding per operation: nothing else is accepted


def test_collection_replays_puts_and_deletes_in_order() -> None:
    blocks = [
        Put("a.txt", H1, 1).encode(),
        Put("b.txt", H2, 2).encode(),
        Put("a.txt", H2, 3).encode(),  # overwrite
        Delete("b.txt").encode(),
        Delete("never-there").encode(),  # a no-op, still an operation
    ]
    collection = Collection()
    collection.apply_blocks(blocks[:2])
    assert list(collection) == ["a.txt", "b.txt"]
    collection.apply_blocks(blocks[2:])
    assert collection.length == 5
    assert list(collection) == ["a.txt"]
    assert collection["a.txt"].blob_hash == H2
    assert collection["a.txt"].index == 2
    assert collection.total_size() == 3
