"""Bad arguments to every ``hyphal._core`` function and class.

Each must raise a ``ValueError``, ``TypeError`` or ``hyphal.errors.HyphalError``:
never another exception (``OverflowError``, ``SystemError``, ``BufferError``,
a Rust panic surfacing as ``PanicException``), and never a crash.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import reference as ref
from hyphal import _core
from hyphal.errors import HyphalError, InvalidInput

ALLOWED = (ValueError, TypeError, HyphalError)
H = bytes(range(32))
K = bytes(range(32, 64))
N24 = bytes(24)
LIMIT = ref.INDEX_LIMIT
MAX = ref.MAX_LENGTH
HUGE = [2**63, 2**64, 2**100]
NEGATIVE = [-1, -(2**63), -(2**100)]


def rejects(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
    with pytest.raises(ALLOWED):
        fn(*args, **kwargs)


def tolerated(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn``; an allowed exception is fine, any other propagates and fails the test."""
    try:
        return fn(*args, **kwargs)
    except ALLOWED:
        return None


def node(index: int, size: int = 0, h: bytes = H) -> _core.Node:
    return _core.Node(index, h, size)


def valid_proof() -> tuple[bytes, list[bytes], bytes, list[_core.Node]]:
    """(encoded proof, blocks, tree hash, known roots) for blocks [5, 7) of 12, upgrading from 3."""
    blocks = [b"block %d" % i for i in range(12)]
    t = ref.RefTree(blocks)
    encoded = ref.make_proof(t, 12, 3, 5, 7)
    known = [node(r.index, r.size, r.hash) for r in t.roots_at(3)]
    return encoded, blocks[5:7], t.hash(), known


# -- explicit cases: (id, thunk) ---------------------------------------------------------

NON_CONTIGUOUS = memoryview(bytes(range(64)))[::2]

BAD_ROOT_SETS: list[tuple[str, Callable[[], list[_core.Node]]]] = [
    ("lonely-block-1", lambda: [node(2)]),
    ("not-a-root", lambda: [node(5)]),
    ("duplicate", lambda: [node(0), node(0)]),
    ("reversed", lambda: [node(8), node(3)]),
    ("overlapping", lambda: [node(3), node(5)]),
    ("unmerged-siblings", lambda: [node(3), node(8), node(10)]),
    ("gap", lambda: [node(3), node(12)]),
    ("repeated-leaf", lambda: [node(1), node(4), node(4)]),
    ("past-max", lambda: [node(LIMIT - 1), node(LIMIT + 1)]),
]

CASES: list[tuple[str, Callable[[], object]]] = [
    # hashing
    ("blake3-str", lambda: _core.blake3("text")),  # type: ignore[arg-type]
    ("blake3-none", lambda: _core.blake3(None)),  # type: ignore[arg-type]
    ("blake3-int", lambda: _core.blake3(5)),  # type: ignore[arg-type]
    ("blake3-list", lambda: _core.blake3([1, 2])),  # type: ignore[arg-type]
    ("blake3-parallel-str", lambda: _core.blake3(b"", parallel="yes")),  # type: ignore[arg-type]
    ("keyed-short-key", lambda: _core.keyed_hash(bytes(31), b"")),
    ("keyed-long-key", lambda: _core.keyed_hash(bytes(33), b"")),
    ("keyed-empty-key", lambda: _core.keyed_hash(b"", b"")),
    ("keyed-str-key", lambda: _core.keyed_hash("k" * 32, b"")),  # type: ignore[arg-type]
    ("keyed-str-data", lambda: _core.keyed_hash(K, "data")),  # type: ignore[arg-type]
    ("derive-bytes-context", lambda: _core.derive_key(b"ctx", b"")),  # type: ignore[arg-type]
    ("derive-none-context", lambda: _core.derive_key(None, b"")),  # type: ignore[arg-type]
    ("derive-str-material", lambda: _core.derive_key("ctx", "m")),  # type: ignore[arg-type]
    ("hasher-short-key", lambda: _core.Hasher(key=bytes(31))),
    ("hasher-long-key", lambda: _core.Hasher(key=bytes(64))),
    ("hasher-both-modes", lambda: _core.Hasher(key=K, derive_key_context="x")),
    ("hasher-str-key", lambda: _core.Hasher(key="k" * 32)),  # type: ignore[arg-type]
    ("hasher-int-context", lambda: _core.Hasher(derive_key_context=5)),  # type: ignore[arg-type]
    ("hasher-update-str", lambda: _core.Hasher().update("s")),  # type: ignore[arg-type]
    ("hasher-update-none", lambda: _core.Hasher().update(None)),  # type: ignore[arg-type]
    ("hasher-update-int", lambda: _core.Hasher().update(7)),  # type: ignore[arg-type]
    ("hasher-finalize-0", lambda: _core.Hasher().finalize(0)),
    ("hasher-finalize-neg", lambda: _core.Hasher().finalize(-1)),
    ("hasher-finalize-65537", lambda: _core.Hasher().finalize(65537)),
    ("hasher-finalize-2^32", lambda: _core.Hasher().finalize(2**32)),
    ("hasher-finalize-2^64", lambda: _core.Hasher().finalize(2**64)),
    ("hasher-finalize-2^100", lambda: _core.Hasher().finalize(2**100)),
    ("hasher-finalize-str", lambda: _core.Hasher().finalize("32")),  # type: ignore[arg-type]
    # flat tree: index
    ("ft-index-neg-depth", lambda: _core.ft_index(-1, 0)),
    ("ft-index-neg-offset", lambda: _core.ft_index(0, -1)),
    ("ft-index-depth-64", lambda: _core.ft_index(64, 0)),
    ("ft-index-depth-2^64", lambda: _core.ft_index(2**64, 0)),
    ("ft-index-offset-2^62", lambda: _core.ft_index(0, 2**62)),
    ("ft-index-offset-2^63", lambda: _core.ft_index(0, 2**63)),
    ("ft-index-63-1", lambda: _core.ft_index(63, 1)),
    ("ft-index-1-2^61", lambda: _core.ft_index(1, 2**61)),
    ("ft-index-huge", lambda: _core.ft_index(2**100, 2**100)),
    ("ft-index-str", lambda: _core.ft_index("a", 0)),  # type: ignore[arg-type]
    ("ft-index-float", lambda: _core.ft_index(0, 1.0)),  # type: ignore[arg-type]
    # flat tree: lengths
    ("ft-roots-neg", lambda: _core.ft_full_roots(-1)),
    ("ft-roots-max+1", lambda: _core.ft_full_roots(MAX + 1)),
    ("ft-roots-2^63", lambda: _core.ft_full_roots(2**63)),
    ("ft-roots-2^64", lambda: _core.ft_full_roots(2**64)),
    ("ft-roots-2^100", lambda: _core.ft_full_roots(2**100)),
    ("ft-roots-str", lambda: _core.ft_full_roots("5")),  # type: ignore[arg-type]
    ("ft-roots-float", lambda: _core.ft_full_roots(5.0)),  # type: ignore[arg-type]
    # flat tree: results that would leave [0, 2^63)
    ("ft-parent-top", lambda: _core.ft_parent(LIMIT - 1)),
    ("ft-sibling-top", lambda: _core.ft_sibling(LIMIT - 1)),
    ("ft-sibling-2^62-1", lambda: _core.ft_sibling(2**62 - 1)),
    # nodes
    ("node-neg-index", lambda: _core.Node(-1, H, 0)),
    ("node-index-2^63", lambda: _core.Node(2**63, H, 0)),
    ("node-index-2^64", lambda: _core.Node(2**64, H, 0)),
    ("node-index-2^100", lambda: _core.Node(2**100, H, 0)),
    ("node-short-hash", lambda: _core.Node(0, bytes(31), 0)),
    ("node-long-hash", lambda: _core.Node(0, bytes(33), 0)),
    ("node-neg-size", lambda: _core.Node(0, H, -1)),
    ("node-size-2^64", lambda: _core.Node(0, H, 2**64)),
    ("node-size-2^100", lambda: _core.Node(0, H, 2**100)),
    ("node-str-index", lambda: _core.Node("0", H, 0)),  # type: ignore[arg-type]
    ("node-str-hash", lambda: _core.Node(0, "h" * 32, 0)),  # type: ignore[arg-type]
    ("node-float-size", lambda: _core.Node(0, H, 1.5)),  # type: ignore[arg-type]
    ("node-none-hash", lambda: _core.Node(0, None, 0)),  # type: ignore[arg-type]
    # single hashes
    ("leaf-neg", lambda: _core.leaf_hash(-1, b"")),
    ("leaf-2^62", lambda: _core.leaf_hash(2**62, b"")),
    ("leaf-2^64", lambda: _core.leaf_hash(2**64, b"")),
    ("leaf-2^100", lambda: _core.leaf_hash(2**100, b"")),
    ("leaf-str-data", lambda: _core.leaf_hash(0, "s")),  # type: ignore[arg-type]
    ("leaf-none-data", lambda: _core.leaf_hash(0, None)),  # type: ignore[arg-type]
    ("parent-neg-size", lambda: _core.parent_hash(-1, H, H)),
    ("parent-size-2^64", lambda: _core.parent_hash(2**64, H, H)),
    ("parent-size-2^100", lambda: _core.parent_hash(2**100, H, H)),
    ("parent-short-left", lambda: _core.parent_hash(0, bytes(31), H)),
    ("parent-long-right", lambda: _core.parent_hash(0, H, bytes(33))),
    ("parent-str-left", lambda: _core.parent_hash(0, "x" * 32, H)),  # type: ignore[arg-type]
    ("tree-hash-none", lambda: _core.tree_hash(None)),  # type: ignore[arg-type]
    ("tree-hash-bytes-items", lambda: _core.tree_hash([H])),  # type: ignore[list-item]
    ("tree-hash-none-item", lambda: _core.tree_hash([None])),  # type: ignore[list-item]
    ("tree-hash-int", lambda: _core.tree_hash(5)),  # type: ignore[arg-type]
    # signable
    ("signable-short-key", lambda: _core.head_signable(bytes(31), H, 0, 0)),
    ("signable-long-hash", lambda: _core.head_signable(H, bytes(33), 0, 0)),
    ("signable-neg-length", lambda: _core.head_signable(H, H, -1, 0)),
    ("signable-length-max+1", lambda: _core.head_signable(H, H, MAX + 1, 0)),
    ("signable-length-2^64", lambda: _core.head_signable(H, H, 2**64, 0)),
    ("signable-neg-fork", lambda: _core.head_signable(H, H, 0, -1)),
    ("signable-fork-2^64", lambda: _core.head_signable(H, H, 0, 2**64)),
    ("signable-fork-2^100", lambda: _core.head_signable(H, H, 0, 2**100)),
    ("signable-str-key", lambda: _core.head_signable("k" * 32, H, 0, 0)),  # type: ignore[arg-type]
    # appending
    ("append-size-overflow", lambda: _core.tree_append([node(0, 2**64 - 1)], [b"x"], False)),
    ("append-size-overflow-par", lambda: _core.tree_append([node(0, 2**64 - 1)], [b"x"], True)),
    (
        "append-deep-overflow",
        lambda: _core.tree_append([node(3, 2**64 - 5), node(9, 2), node(12, 1)], [b"abc"], False),
    ),
    ("append-past-max-length", lambda: _core.tree_append([node(2**62 - 1)], [b""], False)),
    ("append-past-max-length-par", lambda: _core.tree_append([node(2**62 - 1)], [b""], True)),
    ("append-int-block", lambda: _core.tree_append([], [1], False)),  # type: ignore[list-item]
    ("append-str-block", lambda: _core.tree_append([], ["s"], False)),  # type: ignore[list-item]
    ("append-none-blocks", lambda: _core.tree_append([], None, False)),  # type: ignore[arg-type]
    ("append-none-roots", lambda: _core.tree_append(None, [b""], False)),  # type: ignore[arg-type]
    ("append-bytes-roots", lambda: _core.tree_append([H], [b""], False)),  # type: ignore[list-item]
    # proof parameters
    ("indices-neg-length", lambda: _core.proof_indices(-1, 0, 0, 0)),
    ("indices-length-max+1", lambda: _core.proof_indices(MAX + 1, 0, 0, 0)),
    ("indices-length-2^64", lambda: _core.proof_indices(2**64, 0, 0, 0)),
    ("indices-length-2^100", lambda: _core.proof_indices(2**100, 0, 0, 0)),
    ("indices-start>end", lambda: _core.proof_indices(10, 5, 4, 0)),
    ("indices-end>length", lambda: _core.proof_indices(10, 0, 11, 0)),
    ("indices-start>length", lambda: _core.proof_indices(10, 11, 11, 0)),
    ("indices-upgrade>length", lambda: _core.proof_indices(10, 0, 0, 11)),
    ("indices-neg-start", lambda: _core.proof_indices(10, -1, 0, 0)),
    ("indices-neg-upgrade", lambda: _core.proof_indices(10, 0, 0, -1)),
    ("indices-end-2^64", lambda: _core.proof_indices(10, 0, 2**64, 0)),
    ("indices-str", lambda: _core.proof_indices("10", 0, 0, 0)),  # type: ignore[arg-type]
    ("encode-neg-length", lambda: _core.encode_proof(-1, 0, 0, 0, [])),
    ("encode-length-max+1", lambda: _core.encode_proof(MAX + 1, 0, 0, 0, [])),
    ("encode-length-2^64", lambda: _core.encode_proof(2**64, 0, 0, 0, [])),
    ("encode-start>end", lambda: _core.encode_proof(10, 0, 5, 4, [])),
    ("encode-end>length", lambda: _core.encode_proof(10, 0, 0, 11, [])),
    ("encode-upgrade>length", lambda: _core.encode_proof(10, 11, 0, 0, [])),
    ("encode-upgrade-2^100", lambda: _core.encode_proof(10, 2**100, 0, 0, [])),
    ("encode-bytes-nodes", lambda: _core.encode_proof(2, 0, 0, 1, [H])),  # type: ignore[list-item]
    ("encode-none-nodes", lambda: _core.encode_proof(2, 0, 0, 1, None)),  # type: ignore[arg-type]
    ("decode-str", lambda: _core.decode_proof("proof")),  # type: ignore[arg-type]
    ("decode-none", lambda: _core.decode_proof(None)),  # type: ignore[arg-type]
    ("decode-empty", lambda: _core.decode_proof(b"")),
    ("decode-header-only-v0", lambda: _core.decode_proof(bytes(37))),
    ("decode-length>max", lambda: _core.decode_proof(struct.pack("<BQQQQI", 1, MAX + 1, 0, 0, 0, 0))),
    ("decode-start>end", lambda: _core.decode_proof(struct.pack("<BQQQQI", 1, 9, 0, 5, 4, 0))),
    ("decode-end>length", lambda: _core.decode_proof(struct.pack("<BQQQQI", 1, 9, 0, 0, 10, 0))),
    ("decode-upgrade>length", lambda: _core.decode_proof(struct.pack("<BQQQQI", 1, 9, 10, 0, 0, 0))),
    ("decode-huge-count", lambda: _core.decode_proof(struct.pack("<BQQQQI", 1, 9, 0, 0, 0, 2**32 - 1))),
    # verification
    ("verify-garbage", lambda: _core.verify_proof(b"\x01garbage", [], H, [])),
    ("verify-none-proof", lambda: _core.verify_proof(None, [], H, [])),  # type: ignore[arg-type]
    ("verify-short-hash", lambda: _core.verify_proof(valid_proof()[0], valid_proof()[1], bytes(31), [])),
    ("verify-long-hash", lambda: _core.verify_proof(valid_proof()[0], valid_proof()[1], bytes(33), [])),
    ("verify-none-blocks", lambda: _core.verify_proof(valid_proof()[0], None, H, [])),  # type: ignore[arg-type]
    ("verify-int-blocks", lambda: _core.verify_proof(valid_proof()[0], [1, 2], H, [])),  # type: ignore[list-item]
    ("verify-str-blocks", lambda: _core.verify_proof(valid_proof()[0], ["a", "b"], H, [])),  # type: ignore[list-item]
    ("verify-bytes-roots", lambda: _core.verify_proof(*valid_proof()[:3], [H])),  # type: ignore[list-item]
    ("verify-missing-roots", lambda: _core.verify_proof(*valid_proof()[:3], [])),
    ("verify-extra-root", lambda: _core.verify_proof(*valid_proof()[:3], [*valid_proof()[3], node(4)])),
    ("verify-bad-roots", lambda: _core.verify_proof(*valid_proof()[:3], [node(3), node(9)])),
    ("verify-too-few-blocks", lambda: _core.verify_proof(valid_proof()[0], [], *valid_proof()[2:])),
    # ed25519
    ("sk-short-seed", lambda: _core.SigningKey(bytes(31))),
    ("sk-long-seed", lambda: _core.SigningKey(bytes(33))),
    ("sk-empty-seed", lambda: _core.SigningKey(b"")),
    ("sk-str-seed", lambda: _core.SigningKey("s" * 32)),  # type: ignore[arg-type]
    ("sk-none-seed", lambda: _core.SigningKey(None)),  # type: ignore[arg-type]
    ("sk-int-seed", lambda: _core.SigningKey(5)),  # type: ignore[arg-type]
    ("sign-str", lambda: _core.SigningKey(H).sign("m")),  # type: ignore[arg-type]
    ("sign-none", lambda: _core.SigningKey(H).sign(None)),  # type: ignore[arg-type]
    ("verify-short-pk", lambda: _core.ed25519_verify(bytes(31), b"", bytes(64))),
    ("verify-long-pk", lambda: _core.ed25519_verify(bytes(33), b"", bytes(64))),
    ("verify-short-sig", lambda: _core.ed25519_verify(H, b"", bytes(63))),
    ("verify-long-sig", lambda: _core.ed25519_verify(H, b"", bytes(65))),
    ("verify-str-msg", lambda: _core.ed25519_verify(H, "m", bytes(64))),  # type: ignore[arg-type]
    ("verify-none-pk", lambda: _core.ed25519_verify(None, b"", bytes(64))),  # type: ignore[arg-type]
    ("batch-mismatch-keys", lambda: _core.ed25519_verify_batch([H, H], [b""], [bytes(64)])),
    ("batch-mismatch-msgs", lambda: _core.ed25519_verify_batch([H], [b"", b""], [bytes(64)])),
    ("batch-mismatch-sigs", lambda: _core.ed25519_verify_batch([H], [b""], [])),
    ("batch-short-pk", lambda: _core.ed25519_verify_batch([bytes(31)], [b""], [bytes(64)])),
    ("batch-short-sig", lambda: _core.ed25519_verify_batch([H], [b""], [bytes(63)])),
    ("batch-none-item", lambda: _core.ed25519_verify_batch([None], [b""], [bytes(64)])),  # type: ignore[list-item]
    ("batch-int", lambda: _core.ed25519_verify_batch(5, [b""], [bytes(64)])),  # type: ignore[arg-type]
    # xor
    ("xor-distance-short", lambda: _core.xor_distance(bytes(31), H)),
    ("xor-distance-long", lambda: _core.xor_distance(H, bytes(33))),
    ("xor-distance-str", lambda: _core.xor_distance("x" * 32, H)),  # type: ignore[arg-type]
    ("xor-compare-short-target", lambda: _core.xor_compare(bytes(31), H, H)),
    ("xor-compare-short-a", lambda: _core.xor_compare(H, bytes(31), H)),
    ("xor-compare-empty-b", lambda: _core.xor_compare(H, H, b"")),
    ("bucket-short", lambda: _core.bucket_index(bytes(31), H)),
    ("bucket-long", lambda: _core.bucket_index(H, bytes(64))),
    ("closest-short-target", lambda: _core.xor_closest(bytes(31), b"", 1)),
    ("closest-ragged", lambda: _core.xor_closest(H, bytes(33), 1)),
    ("closest-neg-k", lambda: _core.xor_closest(H, bytes(64), -1)),
    ("closest-k-2^64", lambda: _core.xor_closest(H, bytes(64), 2**64)),
    ("closest-k-2^100", lambda: _core.xor_closest(H, bytes(64), 2**100)),
    ("closest-str-k", lambda: _core.xor_closest(H, bytes(64), "1")),  # type: ignore[arg-type]
    ("closest-str-ids", lambda: _core.xor_closest(H, "ids", 1)),  # type: ignore[arg-type]
    ("closest-list-ids", lambda: _core.xor_closest(H, [H, H], 1)),  # type: ignore[arg-type]
    ("sort-short-target", lambda: _core.xor_sort(bytes(33), b"")),
    ("sort-ragged", lambda: _core.xor_sort(H, bytes(5))),
    ("sort-none", lambda: _core.xor_sort(H, None)),  # type: ignore[arg-type]
    # aead
    ("seal-short-key", lambda: _core.xchacha20poly1305_encrypt(bytes(31), N24, b"", b"")),
    ("seal-long-key", lambda: _core.xchacha20poly1305_encrypt(bytes(33), N24, b"", b"")),
    ("seal-short-nonce", lambda: _core.xchacha20poly1305_encrypt(K, bytes(23), b"", b"")),
    ("seal-ietf-nonce", lambda: _core.xchacha20poly1305_encrypt(K, bytes(12), b"", b"")),
    ("seal-str-key", lambda: _core.xchacha20poly1305_encrypt("k" * 32, N24, b"")),  # type: ignore[arg-type]
    ("seal-str-msg", lambda: _core.xchacha20poly1305_encrypt(K, N24, "m")),  # type: ignore[arg-type]
    ("seal-str-aad", lambda: _core.xchacha20poly1305_encrypt(K, N24, b"", "a")),  # type: ignore[arg-type]
    ("open-short-key", lambda: _core.xchacha20poly1305_decrypt(bytes(31), N24, bytes(16))),
    ("open-long-nonce", lambda: _core.xchacha20poly1305_decrypt(K, bytes(25), bytes(16))),
    ("open-short-ciphertext", lambda: _core.xchacha20poly1305_decrypt(K, N24, bytes(15))),
    ("open-empty-ciphertext", lambda: _core.xchacha20poly1305_decrypt(K, N24, b"")),
    ("open-none", lambda: _core.xchacha20poly1305_decrypt(K, N24, None)),  # type: ignore[arg-type]
]

for _name, _roots in BAD_ROOT_SETS:
    CASES += [
        (f"tree-hash-{_name}", lambda r=_roots: _core.tree_hash(r())),
        (f"append-{_name}", lambda r=_roots: _core.tree_append(r(), [b"x"], False)),
        (f"append-par-{_name}", lambda r=_roots: _core.tree_append(r(), [b"x"] * 3, True)),
        (f"verify-known-{_name}", lambda r=_roots: _core.verify_proof(*valid_proof()[:3], r())),
    ]

for _fn in (
    _core.ft_depth,
    _core.ft_offset,
    _core.ft_parent,
    _core.ft_sibling,
    _core.ft_children,
    _core.ft_span,
    _core.ft_block_range,
):
    for _arg in [*NEGATIVE, *HUGE, "1", 1.0, None]:
        CASES.append((f"{_fn.__name__}({_arg!r})", lambda f=_fn, a=_arg: f(a)))


@pytest.mark.parametrize("thunk", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_argument_is_rejected(thunk: Callable[[], object]) -> None:
    with pytest.raises(ALLOWED):
        thunk()


def test_valid_proof_fixture_is_valid() -> None:
    # The verify-* cases above must fail because of the one thing they change.
    _core.verify_proof(*valid_proof())


def test_case_ids_are_unique() -> None:
    names = [c[0] for c in CASES]
    assert len(names) == len(set(names))


# -- non-contiguous buffers: rejected cleanly, or read correctly ------------------------


def test_non_contiguous_buffers() -> None:
    data = bytes(NON_CONTIGUOUS)
    assert len(data) == 32
    for fn, args, contiguous in [
        (_core.blake3, (NON_CONTIGUOUS,), (data,)),
        (_core.keyed_hash, (NON_CONTIGUOUS, b"x"), (data, b"x")),
        (_core.keyed_hash, (K, NON_CONTIGUOUS), (K, data)),
        (_core.leaf_hash, (0, NON_CONTIGUOUS), (0, data)),
        (_core.xor_distance, (NON_CONTIGUOUS, H), (data, H)),
        (_core.xor_sort, (H, NON_CONTIGUOUS), (H, data)),
    ]:
        got = tolerated(fn, *args)
        if got is not None:
            assert got == fn(*contiguous)


# -- hypothesis: random ints and bytes ---------------------------------------------------

any_int = st.one_of(
    st.integers(-(2**70), 2**70),
    st.integers(-5, 300),
    st.integers(0, 300).map(lambda k: LIMIT - 150 + k),
    st.integers(0, 300).map(lambda k: MAX - 150 + k),
    st.integers(0, 300).map(lambda k: 2**64 - 150 + k),
    st.sampled_from([2**100, -(2**100)]),
)


def ok_index(x: int) -> bool:
    return 0 <= x < LIMIT


UNARY: list[tuple[Callable[[int], Any], Callable[[int], Any]]] = [
    (_core.ft_depth, ref.depth),
    (_core.ft_offset, ref.offset),
    (_core.ft_parent, ref.parent),
    (_core.ft_sibling, ref.sibling),
    (_core.ft_children, ref.children),
    (_core.ft_span, ref.span),
    (_core.ft_block_range, ref.block_range),
]


@given(any_int)
def test_flat_tree_random_ints(x: int) -> None:
    for fn, ref_fn in UNARY:
        # A flat index >= 2^63 is never valid (PROTOCOL.md §2), as argument or as answer.
        if not ref.result_in_range(fn.__name__.removeprefix("ft_"), x):
            rejects(fn, x)
            continue
        got = fn(x)
        assert (tuple(got) if isinstance(got, (tuple, list)) else got) == ref_fn(x)


@given(any_int, any_int)
def test_ft_index_random_ints(d: int, o: int) -> None:
    if d < 0 or o < 0 or d > 63:
        rejects(_core.ft_index, d, o)
        return
    expected = ref.index(d, o)
    if ok_index(expected):
        assert _core.ft_index(d, o) == expected
    else:
        rejects(_core.ft_index, d, o)


@given(any_int)
def test_full_roots_random_ints(n: int) -> None:
    if 0 <= n <= MAX:
        assert _core.ft_full_roots(n) == ref.full_roots(n)
    else:
        rejects(_core.ft_full_roots, n)


small_or_any = st.one_of(st.integers(-3, 40), any_int)


def _params_valid(n: int, a: int, start: int, end: int) -> bool:
    return 0 <= a <= n <= MAX and 0 <= start <= end <= n


@given(small_or_any, small_or_any, small_or_any, small_or_any)
def test_proof_params_random_ints(n: int, a: int, start: int, end: int) -> None:
    if not _params_valid(n, a, start, end):
        rejects(_core.proof_indices, n, start, end, a)
        rejects(_core.encode_proof, n, a, start, end, [])
        if all(0 <= v < 2**64 for v in (n, a, start, end)):
            with pytest.raises(HyphalError):
                _core.decode_proof(struct.pack("<BQQQQI", 1, n, a, start, end, 0))
        return
    if end - start > 100_000:
        return  # huge ranges: see test_merkle.test_proof_indices_huge_range_is_cheap
    expected = ref.proof_indices(n, a, start, end)
    assert _core.proof_indices(n, start, end, a) == expected
    nodes = [_core.Node(x, H, 1) for x in expected]
    encoded = _core.encode_proof(n, a, start, end, nodes)
    assert encoded == ref.encode_proof(n, a, start, end, [(H, 1)] * len(expected))
    got = _core.decode_proof(encoded)
    assert got[:4] == (n, a, start, end)
    assert [x.index for x in got[4]] == expected


@given(st.binary(max_size=300), st.lists(st.binary(max_size=20), max_size=4), st.binary(max_size=40))
def test_verify_random_bytes(proof: bytes, blocks: list[bytes], th: bytes) -> None:
    with pytest.raises(ALLOWED):
        _core.verify_proof(proof, blocks, th, [])


@given(any_int, st.binary(min_size=32, max_size=32), any_int)
def test_node_random_ints(index: int, h: bytes, size: int) -> None:
    if ok_index(index) and 0 <= size < 2**64:
        n = _core.Node(index, h, size)
        assert (n.index, n.hash, n.size) == (index, h, size)
    else:
        rejects(_core.Node, index, h, size)


@given(any_int, st.binary(max_size=10))
def test_leaf_hash_random_ints(i: int, data: bytes) -> None:
    if 0 <= i < MAX:
        assert _core.leaf_hash(i, data) == ref.leaf_hash(i, data)
    else:
        rejects(_core.leaf_hash, i, data)


@given(any_int, any_int)
def test_head_signable_random_ints(n: int, fork: int) -> None:
    if 0 <= n <= MAX and 0 <= fork < 2**64:
        assert _core.head_signable(H, K, n, fork) == ref.signable(H, K, n, fork)
    else:
        rejects(_core.head_signable, H, K, n, fork)


@given(st.integers(-(2**70), 2**70) | st.integers(-2, 70000))
def test_finalize_random_lengths(length: int) -> None:
    h = _core.Hasher()
    if 1 <= length <= 65536:
        assert len(h.finalize(length)) == length
    else:
        rejects(h.finalize, length)


@given(st.binary(max_size=70), st.binary(max_size=70), st.binary(max_size=70))
def test_xor_random_bytes(a: bytes, b: bytes, c: bytes) -> None:
    if len(a) == 32 and len(b) == 32:
        assert _core.xor_distance(a, b) == bytes(x ^ y for x, y in zip(a, b, strict=True))
        assert isinstance(_core.bucket_index(a, b), int)
    else:
        rejects(_core.xor_distance, a, b)
        rejects(_core.bucket_index, a, b)
    if len(a) == 32 and len(b) == 32 and len(c) == 32:
        assert isinstance(_core.xor_compare(a, b, c), int)
    else:
        rejects(_core.xor_compare, a, b, c)


@given(st.binary(max_size=40), st.binary(max_size=200), any_int)
def test_xor_closest_random(target: bytes, ids: bytes, k: int) -> None:
    good_buffers = len(target) == 32 and len(ids) % 32 == 0
    if good_buffers and 0 <= k < 2**63:
        n = len(ids) // 32
        t = int.from_bytes(target, "big")
        expected = sorted(range(n), key=lambda i: (int.from_bytes(ids[32 * i : 32 * i + 32], "big") ^ t, i))
        assert _core.xor_closest(target, ids, k) == expected[:k]
        assert _core.xor_sort(target, ids) == expected
    elif not good_buffers or k < 0 or k >= 2**64:
        rejects(_core.xor_closest, target, ids, k)
        if not good_buffers:
            rejects(_core.xor_sort, target, ids)
    else:
        tolerated(_core.xor_closest, target, ids, k)


@given(st.binary(max_size=40), st.binary(max_size=30))
def test_aead_random_lengths(key: bytes, nonce: bytes) -> None:
    if len(key) == 32 and len(nonce) == 24:
        ct = _core.xchacha20poly1305_encrypt(key, nonce, b"m", b"")
        assert _core.xchacha20poly1305_decrypt(key, nonce, ct, b"") == b"m"
    else:
        rejects(_core.xchacha20poly1305_encrypt, key, nonce, b"m", b"")
        rejects(_core.xchacha20poly1305_decrypt, key, nonce, bytes(17), b"")


@given(st.binary(max_size=40), st.binary(max_size=70), st.binary(max_size=70))
def test_signing_random_lengths(seed: bytes, pk: bytes, sig: bytes) -> None:
    if len(seed) == 32:
        assert len(_core.SigningKey(seed).public_key) == 32
    else:
        rejects(_core.SigningKey, seed)
    if len(pk) == 32 and len(sig) == 64:
        assert isinstance(_core.ed25519_verify(pk, b"msg", sig), bool)
        assert isinstance(_core.ed25519_verify_batch([pk], [b"msg"], [sig]), bool)
    else:
        rejects(_core.ed25519_verify, pk, b"msg", sig)
        rejects(_core.ed25519_verify_batch, [pk], [b"msg"], [sig])


@given(
    st.lists(st.binary(min_size=32, max_size=32), max_size=4),
    st.lists(st.binary(max_size=8), max_size=4),
    st.lists(st.binary(min_size=64, max_size=64), max_size=4),
)
def test_batch_random_lengths(pks: list[bytes], msgs: list[bytes], sigs: list[bytes]) -> None:
    if len(pks) == len(msgs) == len(sigs):
        result = tolerated(_core.ed25519_verify_batch, pks, msgs, sigs)
        if pks:
            assert result is False
    else:
        with pytest.raises(InvalidInput):
            _core.ed25519_verify_batch(pks, msgs, sigs)
