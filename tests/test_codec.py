"""The wire codec: a Reader reads back what a Writer wrote, and refuses anything short or over-limit."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from hyphal.codec import Reader, Writer, byte_view
from hyphal.errors import DecodeError, InvalidInput

PAIR = struct.Struct("<IQ")

# One field kind: a strategy for its value, how to write it, how to read it back.
FieldKind = tuple[st.SearchStrategy[Any], Callable[[Writer, Any], Any], Callable[[Reader[Any]], Any]]

KINDS: dict[str, FieldKind] = {
    "u8": (st.integers(0, 2**8 - 1), lambda w, v: w.u8(v, "f"), lambda r: r.u8("f")),
    "u16": (st.integers(0, 2**16 - 1), lambda w, v: w.u16(v, "f"), lambda r: r.u16("f")),
    "u32": (st.integers(0, 2**32 - 1), lambda w, v: w.u32(v, "f"), lambda r: r.u32("f")),
    "u64": (st.integers(0, 2**64 - 1), lambda w, v: w.u64(v, "f"), lambda r: r.u64("f")),
    "pack": (
        st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
        lambda w, v: w.pack(PAIR, "pair", *v),
        lambda r: r.unpack(PAIR, "pair"),
    ),
    "fixed": (st.binary(min_size=5, max_size=5), lambda w, v: w.fixed(v, 5, "f"), lambda r: r.take(5, "f")),
    "bytes8": (st.binary(max_size=40), lambda w, v: w.bytes8(v, 40, "f"), lambda r: r.bytes8(40, "f")),
    "bytes16": (st.binary(max_size=300), lambda w, v: w.bytes16(v, 300, "f"), lambda r: r.bytes16(300, "f")),
    "bytes32": (st.binary(max_size=300), lambda w, v: w.bytes32(v, 300, "f"), lambda r: r.bytes32(300, "f")),
    "bytes32 run": (
        st.lists(st.binary(max_size=30), max_size=5).map(tuple),
        lambda w, v: [w.bytes32(b, 30, "f") for b in v],
        None,  # read with the count it was written with; see _read
    ),
}


def _read(kind: str, value: Any, reader: Reader[Any]) -> Any:
    if kind == "bytes32 run":
        return reader.bytes32_run(len(value), 30, "f")
    return KINDS[kind][2](reader)


_fields = st.lists(
    st.sampled_from(sorted(KINDS)).flatmap(lambda k: KINDS[k][0].map(lambda v: (k, v))), max_size=8
)


def _write(fields: list[tuple[str, Any]]) -> bytes:
    w = Writer()
    for kind, value in fields:
        KINDS[kind][1](w, value)
    assert w.size() == len(w.to_bytes())
    return w.to_bytes()


def _same(read: Any, value: Any) -> bool:
    if isinstance(read, tuple) and read and isinstance(read[0], memoryview):
        read = tuple(bytes(b) for b in read)
    elif isinstance(read, memoryview):
        read = bytes(read)
    return bool(read == value)


@given(_fields, st.booleans())
def test_round_trip(fields: list[tuple[str, Any]], as_view: bool) -> None:
    encoded = _write(fields)
    reader: Reader[Any] = Reader(memoryview(encoded) if as_view else encoded)
    for kind, value in fields:
        assert _same(_read(kind, value, reader), value), kind
    assert reader.done()
    assert reader.remaining == 0
    assert reader.offset == len(encoded)
    reader.expect_end()


@given(_fields, st.data())
def test_truncation_anywhere_raises_decode_error(fields: list[tuple[str, Any]], data: st.DataObject) -> None:
    encoded = _write(fields)
    assume(encoded)
    cut = data.draw(st.integers(0, len(encoded) - 1))
    reader: Reader[Any] = Reader(encoded[:cut])

    def read_all() -> None:
        for kind, value in fields:
            _read(kind, value, reader)

    with pytest.raises(DecodeError, match="truncated"):
        read_all()


@given(_fields, st.binary(min_size=1, max_size=8))
def test_trailing_bytes_are_refused(fields: list[tuple[str, Any]], extra: bytes) -> None:
    reader: Reader[Any] = Reader(_write(fields) + extra)
    for kind, value in fields:
        _read(kind, value, reader)
    assert not reader.done()
    assert reader.remaining == len(extra)
    with pytest.raises(DecodeError, match="trailing"):
        reader.expect_end()


class _NoSlicing(bytes):
    """Bytes that fail the test if anything slices them: an over-limit length must be refused first."""

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            raise AssertionError("sliced before the length was checked")
        return super().__getitem__(key)


@given(st.integers(0, 2**32 - 1), st.integers(0, 1000))
def test_over_limit_lengths_are_refused_before_allocating(size: int, limit: int) -> None:
    """A length prefix over its limit fails at once, even where it claims gigabytes that are not there."""
    for width, read in [
        (1, lambda r: r.bytes8(limit, "name")),
        (2, lambda r: r.bytes16(limit, "name")),
        (4, lambda r: r.bytes32(limit, "name")),
        (4, lambda r: r.bytes32_run(1, limit, "name")),
    ]:
        prefixed = size & ((1 << (8 * width)) - 1)
        if prefixed <= limit:
            continue
        body = _NoSlicing(prefixed.to_bytes(width, "little") + bytes(min(prefixed, 64)))
        with pytest.raises(DecodeError, match="name of"):
            read(Reader(body))


def test_min_size_is_enforced() -> None:
    with pytest.raises(DecodeError, match="record"):
        Reader(b"\x00\x00").bytes16(10, "record", min_size=1)
    with pytest.raises(InvalidInput, match="record"):
        Writer().bytes16(b"", 10, "record", min_size=1)


def test_errors_name_the_field_and_the_message() -> None:
    with pytest.raises(DecodeError, match=r"datagram truncated: txid needs 8 bytes, 3 left"):
        Reader(b"abc", "datagram").u64("txid")
    with pytest.raises(DecodeError, match=r"token of 40 bytes outside its limits 0\.\.32"):
        Reader(bytes([40]) + bytes(40)).bytes8(32, "token")
    with pytest.raises(DecodeError, match="truncated: payload needs 5 bytes, 2 left"):
        Reader(b"\x05\x00ab").bytes16(100, "payload")  # its size was fine; the bytes are not there
    with pytest.raises(DecodeError, match="ERROR text of 5 bytes"):
        Reader(b"hello").rest("ERROR text", 4)


def test_views_are_not_copied() -> None:
    buffer = bytearray(Writer().bytes32(b"block", 10, "b").u8(1, "x").to_bytes())
    reader = Reader(byte_view(buffer))
    block = reader.bytes32(10, "b")
    assert isinstance(block, memoryview)
    assert block.obj is buffer
    assert reader.u8("x") == 1
    reader.expect_end()


def test_byte_view_refuses_what_is_not_contiguous_bytes() -> None:
    assert byte_view(memoryview(bytes(8)).cast("Q")).nbytes == 8  # recast, uncopied
    with pytest.raises(DecodeError):
        byte_view(memoryview(bytes(8))[::2])
    with pytest.raises(DecodeError):
        byte_view("text")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "write",
    [
        lambda w: w.u8(256, "f"),
        lambda w: w.u16(-1, "f"),
        lambda w: w.u32(2**32, "f"),
        lambda w: w.u64(2**64, "f"),
        lambda w: w.pack(PAIR, "f", 2**32, 0),
        lambda w: w.fixed(b"four", 5, "f"),
        lambda w: w.bytes8(bytes(256), 1000, "f"),  # the prefix caps it whatever the limit
        lambda w: w.bytes32(bytes(11), 10, "f"),
    ],
)
def test_writer_refuses_what_does_not_fit(write: Callable[[Writer], object]) -> None:
    with pytest.raises(InvalidInput, match="f"):
        write(Writer())


def test_parts_are_uncopied_pieces() -> None:
    block = bytearray(b"big block")
    parts = Writer(b"\x08").bytes32(block, 100, "block").parts()
    assert parts[0] == b"\x08"
    assert parts[-1] is block
    assert b"".join(parts) == b"\x08" + struct.pack("<I", 9) + b"big block"


def test_parse_hands_over_the_position() -> None:
    def two_bytes(data: bytes, at: int) -> tuple[bytes, int]:
        if at + 2 > len(data):
            raise DecodeError("short")
        return data[at : at + 2], at + 2

    reader = Reader(b"\x01abz")
    assert reader.u8("a") == 1
    assert reader.parse(two_bytes) == b"ab"
    assert reader.rest("tail") == b"z"
    assert reader.done()
