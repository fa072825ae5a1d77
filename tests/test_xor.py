"""XOR distance (PROTOCOL.md §6) against plain-int references."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

import hyphal
from hyphal import _core
from hyphal.errors import InvalidInput
from hyphal.xor import bucket_index, xor_closest, xor_compare, xor_distance, xor_sort

ids32 = st.binary(min_size=32, max_size=32)


def as_int(b: bytes) -> int:
    return int.from_bytes(b, "big")


def sign(x: int) -> int:
    return (x > 0) - (x < 0)


def ref_order(target: bytes, ids: list[bytes]) -> list[int]:
    t = as_int(target)
    return sorted(range(len(ids)), key=lambda i: (as_int(ids[i]) ^ t, i))


@st.composite
def near(draw: st.DrawFn, target: bytes) -> bytes:
    """An id sharing a random-length prefix with ``target``."""
    bits = draw(st.integers(0, 256))
    mask = draw(st.integers(0, 2**bits - 1)) if bits else 0
    return (as_int(target) ^ mask).to_bytes(32, "big")


@st.composite
def id_sets(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    target = draw(ids32)
    pool = draw(st.lists(st.one_of(ids32, near(target), st.just(target)), max_size=40))
    if pool and draw(st.booleans()):
        # Duplicates: ties must keep input order.
        pool += draw(st.lists(st.sampled_from(pool), max_size=10))
        pool = draw(st.permutations(pool))
    return target, pool


@given(ids32, ids32)
def test_xor_distance(a: bytes, b: bytes) -> None:
    d = xor_distance(a, b)
    assert d == (as_int(a) ^ as_int(b)).to_bytes(32, "big")
    assert xor_distance(b, a) == d
    assert xor_distance(a, a) == bytes(32)
    assert xor_distance(bytearray(a), memoryview(b)) == d


@given(st.data())
def test_xor_compare(data: st.DataObject) -> None:
    target = data.draw(ids32)
    a = data.draw(st.one_of(ids32, near(target)))
    b = data.draw(st.one_of(ids32, near(target), st.just(a)))
    t = as_int(target)
    expected = sign((as_int(a) ^ t) - (as_int(b) ^ t))
    got = xor_compare(target, a, b)
    assert sign(got) == expected
    assert sign(xor_compare(target, b, a)) == -expected
    assert xor_compare(target, a, a) == 0


def test_xor_compare_is_big_endian() -> None:
    target = bytes(32)
    hi = b"\x01" + bytes(31)
    lo = bytes(31) + b"\xff"
    assert xor_compare(target, lo, hi) < 0
    assert xor_compare(target, hi, lo) > 0


@given(st.data())
def test_bucket_index(data: st.DataObject) -> None:
    a = data.draw(ids32)
    b = data.draw(st.one_of(ids32, near(a), st.just(a)))
    expected = 256 - (as_int(a) ^ as_int(b)).bit_length()
    assert bucket_index(a, b) == expected
    assert bucket_index(b, a) == expected


def test_bucket_index_known() -> None:
    z = bytes(32)
    assert bucket_index(z, z) == 256
    assert bucket_index(z, b"\x80" + bytes(31)) == 0
    assert bucket_index(z, b"\x40" + bytes(31)) == 1
    assert bucket_index(z, bytes(31) + b"\x01") == 255
    assert bucket_index(z, b"\x00\x01" + bytes(30)) == 15


@given(id_sets(), st.data())
def test_xor_closest(case: tuple[bytes, list[bytes]], data: st.DataObject) -> None:
    target, ids = case
    n = len(ids)
    k = data.draw(st.one_of(st.integers(0, n + 3), st.just(n), st.just(n + 1000), st.just(0)), label="k")
    expected = ref_order(target, ids)[:k]
    buf = b"".join(ids)
    assert xor_closest(target, buf, k) == expected
    assert xor_closest(target, ids, k) == expected
    assert xor_closest(target, bytearray(buf), k) == expected
    assert xor_closest(target, memoryview(b"\xee" * 32 + buf)[32:], k) == expected
    assert _core.xor_closest(target, buf, k) == expected


@given(id_sets())
def test_xor_sort(case: tuple[bytes, list[bytes]]) -> None:
    target, ids = case
    expected = ref_order(target, ids)
    buf = b"".join(ids)
    assert xor_sort(target, buf) == expected
    assert xor_sort(target, ids) == expected
    assert xor_sort(target, tuple(ids)) == expected
    assert xor_sort(target, memoryview(bytearray(buf))) == expected
    assert sorted(xor_sort(target, buf)) == list(range(len(ids)))


def test_empty_and_large_sets() -> None:
    target = bytes(range(32))
    assert xor_closest(target, b"", 5) == []
    assert xor_closest(target, [], 5) == []
    assert xor_sort(target, b"") == []
    rng = random.Random(5)
    ids = [rng.randbytes(32) for _ in range(20_000)]
    ids += ids[:100]  # duplicates at the end
    rng.shuffle(ids)
    expected = ref_order(target, ids)
    buf = b"".join(ids)
    assert xor_closest(target, buf, 20) == expected[:20]
    assert xor_closest(target, buf, 1) == expected[:1]
    assert xor_sort(target, buf) == expected


def test_ties_keep_input_order() -> None:
    target = bytes(32)
    a = b"\x01" * 32
    b = b"\x02" * 32
    ids = [b, a, b, a, a, target]
    assert xor_sort(target, ids) == [5, 1, 3, 4, 0, 2]
    assert xor_closest(target, ids, 3) == [5, 1, 3]


@pytest.mark.parametrize("extra", [1, 5, 31, 33, 63])
def test_ragged_buffer_raises(extra: int) -> None:
    target = bytes(32)
    buf = bytes(32 * 2 + extra) if extra < 32 else bytes(extra)
    with pytest.raises(InvalidInput):
        xor_closest(target, buf, 1)
    with pytest.raises(InvalidInput):
        xor_sort(target, buf)
    with pytest.raises(InvalidInput):
        _core.xor_sort(target, bytearray(buf))


def test_sequence_with_wrong_length_id_raises() -> None:
    with pytest.raises(InvalidInput):
        xor_closest(bytes(32), [bytes(32), bytes(31)], 1)
    with pytest.raises(hyphal.HyphalError):
        xor_sort(bytes(32), [bytes(33)])
