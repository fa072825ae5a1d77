"""The block bitfield against a plain set of indexes."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import errors
from hyphal.feed.bitfield import PAGE_BITS, PAGE_BYTES, Bitfield, decode_page, encode_page

# Bounds near page boundaries, so the multi-page logic is exercised.
bounds = st.builds(
    lambda base, delta: max(0, base + delta),
    st.sampled_from([0, PAGE_BITS, 2 * PAGE_BITS, 3 * PAGE_BITS]),
    st.integers(-40, 40),
)
ranges = st.tuples(bounds, bounds).map(lambda r: (min(r), max(r)))
queries = st.tuples(bounds, st.integers(0, 100)).map(lambda q: (q[0], q[0] + q[1]))


def missing_of(present: set[int], start: int, end: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i in range(start, end):
        if i in present:
            continue
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out


def build(ops: list[tuple[str, tuple[int, int]]]) -> tuple[Bitfield, set[int]]:
    bf, model = Bitfield(), set()
    for op, (a, b) in ops:
        if op == "set":
            bf.apply(bf.set_range_changes(a, b))
            model |= set(range(a, b))
        else:
            bf.apply(bf.truncate_changes(a))
            model = {i for i in model if i < a}
    return bf, model


ops = st.lists(st.tuples(st.sampled_from(["set", "set", "truncate"]), ranges), max_size=8)


@given(ops, st.one_of(queries, ranges.filter(lambda r: r[1] - r[0] < 200)))
def test_matches_a_set(operations: list[tuple[str, tuple[int, int]]], query: tuple[int, int]) -> None:
    bf, model = build(operations)
    start, end = query
    assert bf.missing(start, end) == missing_of(model, start, end)
    assert bf.has_range(start, end) == all(i in model for i in range(start, end))
    assert bf.count() == len(model)
    for i in (start, end, start + 1, PAGE_BITS - 1, PAGE_BITS):
        assert bf.has(i) == (i in model)


@given(ops)
def test_pages_roundtrip_through_their_encoding(operations: list[tuple[str, tuple[int, int]]]) -> None:
    bf, model = build(operations)
    rows = [(page, encode_page(bits)) for page, bits in bf._pages.items()]
    again = Bitfield.from_rows(rows)
    assert again._pages == bf._pages
    assert again.count() == len(model)
    assert again.missing(PAGE_BITS - 50, PAGE_BITS + 50) == missing_of(model, PAGE_BITS - 50, PAGE_BITS + 50)


def test_page_encoding_is_lsb_first() -> None:
    bf = Bitfield()
    bf.apply(bf.set_range_changes(0, 1))
    bf.apply(bf.set_range_changes(9, 10))
    assert encode_page(bf._pages[0])[:2] == b"\x01\x02"


def test_changes_do_not_apply_themselves() -> None:
    bf = Bitfield()
    changes = bf.set_range_changes(0, 10)
    assert not bf.has(0)
    bf.apply(changes)
    assert bf.has_range(0, 10)
    assert bf.set_range_changes(0, 10) == {}


def test_huge_sparse_ranges_are_fast() -> None:
    bf = Bitfield()
    bf.apply(bf.set_range_changes(2**61, 2**61 + 3))
    assert bf.missing(0, 2**62) == [(0, 2**61), (2**61 + 3, 2**62)]
    assert bf.next_present(0, 2**62) == 2**61
    assert not bf.has_range(0, 2**62)


@pytest.mark.parametrize(
    ("page", "data"),
    [(-1, bytes(PAGE_BYTES)), (0, b"x"), ("0", bytes(PAGE_BYTES)), (0, None), (2**60, bytes(PAGE_BYTES))],
)
def test_bad_rows_are_decode_errors(page: object, data: object) -> None:
    with pytest.raises(errors.DecodeError):
        decode_page(page, data)


def test_ranges_outside_the_feed_are_invalid() -> None:
    with pytest.raises(errors.InvalidInput):
        Bitfield().set_range_changes(5, 4)
    with pytest.raises(errors.InvalidInput):
        Bitfield().set_range_changes(0, 2**62 + 1)
