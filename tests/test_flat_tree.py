"""hyphal.flat_tree against the reference (PROTOCOL.md §2)."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import reference as ref
from hyphal import _core, flat_tree
from hyphal.errors import InvalidInput

LIMIT = ref.INDEX_LIMIT  # flat indexes are < 2^63
MAX_LENGTH = ref.MAX_LENGTH


@st.composite
def flat_indexes(draw: st.DrawFn) -> int:
    """Valid flat indexes, biased towards every depth and both ends of the range."""
    kind = draw(st.sampled_from(["small", "any", "structured", "edge"]))
    if kind == "small":
        return draw(st.integers(0, 300))
    if kind == "any":
        return draw(st.integers(0, LIMIT - 1))
    if kind == "structured":
        d = draw(st.integers(0, 63))
        o = draw(st.integers(0, (LIMIT >> (d + 1)) - 1 if d < 63 else 0))
        return ref.index(d, o)
    return LIMIT - 1 - draw(st.integers(0, 300))


lengths = st.one_of(
    st.integers(0, 300),
    st.integers(0, MAX_LENGTH),
    st.integers(0, 300).map(lambda k: MAX_LENGTH - k),
    st.integers(0, 62).map(lambda k: 2**k),
    st.integers(1, 62).map(lambda k: 2**k - 1),
)


def in_range(*xs: int) -> bool:
    return all(0 <= x < LIMIT for x in xs)


def test_core_constants() -> None:
    assert _core.MAX_LENGTH == MAX_LENGTH


@pytest.mark.parametrize(
    ("n", "roots"),
    [
        (0, []),
        (1, [0]),
        (2, [1]),
        (3, [1, 4]),
        (4, [3]),
        (5, [3, 8]),
        (6, [3, 9]),
        (7, [3, 9, 12]),
        (8, [7]),
        (11, [7, 17, 20]),
        (2**62, [2**62 - 1]),
    ],
)
def test_full_roots_known(n: int, roots: list[int]) -> None:
    assert flat_tree.full_roots(n) == roots


def test_known_small_values() -> None:
    assert [flat_tree.depth(x) for x in range(16)] == [0, 1, 0, 2, 0, 1, 0, 3, 0, 1, 0, 2, 0, 1, 0, 4]
    assert [flat_tree.offset(x) for x in (0, 2, 4, 1, 5, 9, 3, 11, 7)] == [0, 1, 2, 0, 1, 2, 0, 1, 0]
    assert flat_tree.index(0, 0) == 0
    assert flat_tree.index(0, 3) == 6
    assert flat_tree.index(1, 2) == 9
    assert flat_tree.index(2, 1) == 11
    assert flat_tree.index(63, 0) == 2**63 - 1
    assert flat_tree.parent(0) == 1
    assert flat_tree.parent(2) == 1
    assert flat_tree.parent(1) == 3
    assert flat_tree.parent(5) == 3
    assert flat_tree.parent(8) == 9
    assert flat_tree.sibling(0) == 2
    assert flat_tree.sibling(2) == 0
    assert flat_tree.sibling(1) == 5
    assert flat_tree.sibling(3) == 11
    assert flat_tree.children(0) is None
    assert flat_tree.children(6) is None
    assert tuple(flat_tree.children(1) or ()) == (0, 2)
    assert tuple(flat_tree.children(3) or ()) == (1, 5)
    assert tuple(flat_tree.children(7) or ()) == (3, 11)
    assert tuple(flat_tree.span(0)) == (0, 0)
    assert tuple(flat_tree.span(3)) == (0, 6)
    assert tuple(flat_tree.span(11)) == (8, 14)
    assert tuple(flat_tree.block_range(3)) == (0, 4)
    assert tuple(flat_tree.block_range(8)) == (4, 5)
    assert tuple(flat_tree.block_range(17)) == (8, 10)
    # The root of a tree of MAX_LENGTH blocks, and its last leaf.
    assert tuple(flat_tree.span(2**62 - 1)) == (0, 2**63 - 2)
    assert tuple(flat_tree.block_range(2**62 - 1)) == (0, 2**62)
    assert tuple(flat_tree.block_range(2**63 - 2)) == (2**62 - 1, 2**62)
    assert flat_tree.depth(2**63 - 1) == 63
    assert flat_tree.offset(2**63 - 1) == 0


@pytest.mark.parametrize(
    ("name", "x"),
    [
        ("parent", 2**63 - 1),
        ("sibling", 2**63 - 1),
        ("sibling", 2**62 - 1),
        ("children", 2**63 - 1),
        ("span", 2**63 - 1),
        ("block_range", 2**63 - 1),
    ],
)
def test_results_past_2_63_are_invalid(name: str, x: int) -> None:
    # PROTOCOL.md §2: every flat index fits in 63 bits; an answer past that is an invalid argument.
    fn = getattr(flat_tree, name)
    if ref.result_in_range(name, x):
        assert fn(x) == getattr(ref, name)(x)
    else:
        with pytest.raises(InvalidInput):
            fn(x)


UNARY = ["depth", "offset", "parent", "sibling", "children", "span", "block_range"]


def _plain(v: object) -> object:
    return tuple(v) if isinstance(v, (tuple, list)) else v


@given(flat_indexes())
def test_unary_functions_match_reference(x: int) -> None:
    for name in UNARY:
        fn = getattr(flat_tree, name)
        if ref.result_in_range(name, x):
            assert _plain(fn(x)) == getattr(ref, name)(x), name
        else:
            with pytest.raises(InvalidInput):
                fn(x)


@given(d=st.integers(0, 63), o=st.integers(0, LIMIT))
def test_index_matches_reference(d: int, o: int) -> None:
    o >>= d  # keep most results in range
    expected = ref.index(d, o)
    if in_range(expected):
        assert flat_tree.index(d, o) == expected
    else:
        with pytest.raises(InvalidInput):
            flat_tree.index(d, o)


@given(lengths)
def test_full_roots_match_reference(n: int) -> None:
    roots = flat_tree.full_roots(n)
    assert roots == ref.full_roots(n)
    # The roots tile [0, n) left to right with strictly shrinking powers of two.
    covered = 0
    widths = []
    for r in roots:
        s, e = flat_tree.block_range(r)
        assert s == covered
        widths.append(e - s)
        covered = e
    assert covered == n
    assert widths == sorted(widths, reverse=True)
    assert len(set(widths)) == len(widths)
    assert all(w & (w - 1) == 0 for w in widths)


@given(flat_indexes())
def test_round_trips(x: int) -> None:
    assume(x != LIMIT - 1)  # the one index whose subtree leaves the range
    d = flat_tree.depth(x)
    assert flat_tree.index(d, flat_tree.offset(x)) == x
    s = ref.sibling(x)
    if in_range(s):
        assert flat_tree.sibling(flat_tree.sibling(x)) == x
        assert flat_tree.depth(s) == d
    p = ref.parent(x)
    if in_range(p):
        p = flat_tree.parent(x)
        assert flat_tree.depth(p) == d + 1
    if in_range(p) and ref.result_in_range("children", p):
        kids = flat_tree.children(p)
        assert kids is not None
        assert x in tuple(kids)
        if in_range(s):
            assert flat_tree.parent(s) == p
            assert set(kids) == {x, s}
        lo, hi = flat_tree.block_range(p)
        xlo, xhi = flat_tree.block_range(x)
        assert lo <= xlo < xhi <= hi
        assert hi - lo == 2 * (xhi - xlo)
    kids = flat_tree.children(x)
    if kids is None:
        assert d == 0
        assert x % 2 == 0
        assert tuple(flat_tree.block_range(x)) == (x // 2, x // 2 + 1)
    else:
        left, right = kids
        assert flat_tree.parent(left) == x
        assert flat_tree.parent(right) == x
        assert flat_tree.sibling(left) == right
        assert flat_tree.block_range(left)[0] == flat_tree.block_range(x)[0]
        assert flat_tree.block_range(right)[1] == flat_tree.block_range(x)[1]
        assert flat_tree.block_range(left)[1] == flat_tree.block_range(right)[0]
    first, last = flat_tree.span(x)
    assert first % 2 == 0
    assert last % 2 == 0
    assert last - first == 2 * (2**d - 1)


def test_exhaustive_small_against_reference() -> None:
    for x in range(2048):
        assert flat_tree.depth(x) == ref.depth(x)
        assert flat_tree.offset(x) == ref.offset(x)
        assert flat_tree.parent(x) == ref.parent(x)
        assert flat_tree.sibling(x) == ref.sibling(x)
        kids = flat_tree.children(x)
        assert (None if kids is None else tuple(kids)) == ref.children(x)
        assert tuple(flat_tree.span(x)) == ref.span(x)
        assert tuple(flat_tree.block_range(x)) == ref.block_range(x)
    for n in range(1025):
        assert flat_tree.full_roots(n) == ref.full_roots(n)
    for d in range(12):
        for o in range(64):
            assert flat_tree.index(d, o) == ref.index(d, o)
