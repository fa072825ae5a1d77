"""Merkle trees and proofs (PROTOCOL.md §3-4) against the pure-Python reference."""

from __future__ import annotations

import random
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import reference as ref
from hyphal import _core, errors
from hyphal.merkle import (
    MAX_LENGTH,
    MerkleTree,
    Proof,
    TreeNode,
    create_proof,
    head_signable,
    leaf_hash,
    parent_hash,
    tree_hash,
    verify_proof,
)

REJECTED = (errors.ProofError, errors.DecodeError)
NodeKey = tuple[int, bytes, int]


def key(node: TreeNode | ref.RNode) -> NodeKey:
    return (node.index, bytes(node.hash), node.size)


def keys(nodes: Iterable[TreeNode | ref.RNode]) -> list[NodeKey]:
    return sorted(key(n) for n in nodes)


def to_node(r: ref.RNode) -> TreeNode:
    return TreeNode(r.index, r.hash, r.size)


def to_nodes(rs: Iterable[ref.RNode]) -> list[TreeNode]:
    return [to_node(r) for r in rs]


@dataclass
class Case:
    """A writer's tree of ``len(blocks)`` blocks and one proof request against it."""

    blocks: list[bytes]
    a: int
    start: int
    end: int
    tree: ref.RefTree = field(init=False)

    def __post_init__(self) -> None:
        self.tree = ref.RefTree(self.blocks)

    @property
    def n(self) -> int:
        return len(self.blocks)

    def get_node(self, i: int) -> TreeNode:
        return to_node(self.tree.nodes[i])

    def proof(self) -> Proof:
        return create_proof(self.get_node, self.n, self.start, self.end, upgrade_from=self.a)

    def known_roots(self) -> list[TreeNode]:
        return to_nodes(self.tree.roots_at(self.a))

    def range_blocks(self) -> list[bytes]:
        return self.blocks[self.start : self.end]


distinct_blocks = st.lists(st.binary(max_size=20), max_size=40, unique=True)


@st.composite
def proof_cases(draw: st.DrawFn, min_n: int = 0, max_n: int = 40) -> Case:
    blocks = draw(st.lists(st.binary(max_size=20), min_size=min_n, max_size=max_n, unique=True))
    n = len(blocks)
    a = draw(st.one_of(st.just(0), st.just(n), st.integers(0, n)))
    kind = draw(st.sampled_from(["empty", "single", "any"]))
    if kind == "single" and n > 0:
        start = draw(st.integers(0, n - 1))
        end = start + 1
    else:
        start = draw(st.integers(0, n))
        end = start if kind == "empty" else draw(st.integers(start, n))
    return Case(blocks, a, start, end)


# -- constants and single hashes -----------------------------------------------------


def test_domain_keys() -> None:
    assert _core.LEAF_KEY == ref.LEAF_KEY
    assert _core.PARENT_KEY == ref.PARENT_KEY
    assert _core.HEAD_KEY == ref.HEAD_KEY
    assert _core.FEED_HEAD_NAMESPACE == ref.FEED_HEAD_NAMESPACE
    assert len({ref.LEAF_KEY, ref.PARENT_KEY, ref.HEAD_KEY, ref.FEED_HEAD_NAMESPACE}) == 4
    assert MAX_LENGTH == 2**62


@given(i=st.integers(0, 2**62 - 1), data=st.binary(max_size=2000))
def test_leaf_hash(i: int, data: bytes) -> None:
    assert leaf_hash(i, data) == ref.leaf_hash(i, data)
    assert leaf_hash(i, bytearray(data)) == ref.leaf_hash(i, data)


def test_leaf_hash_binds_index_and_length() -> None:
    assert leaf_hash(0, b"x") != leaf_hash(1, b"x")
    assert leaf_hash(0, b"") != leaf_hash(1, b"")
    assert leaf_hash(0, b"") == ref.KH(ref.LEAF_KEY, bytes(16))


@given(
    size=st.integers(0, 2**64 - 1),
    left=st.binary(min_size=32, max_size=32),
    right=st.binary(min_size=32, max_size=32),
)
def test_parent_hash(size: int, left: bytes, right: bytes) -> None:
    assert parent_hash(size, left, right) == ref.parent_hash(size, left, right)


def test_empty_tree_hash() -> None:
    assert tree_hash([]) == ref.KH(ref.HEAD_KEY, bytes(8))
    assert MerkleTree().hash() == ref.KH(ref.HEAD_KEY, bytes(8))
    assert MerkleTree().length == 0


@given(distinct_blocks)
def test_tree_hash_of_reference_roots(blocks: list[bytes]) -> None:
    t = ref.RefTree(blocks)
    assert tree_hash(to_nodes(t.roots)) == t.hash()
    assert MerkleTree(to_nodes(t.roots)).hash() == t.hash()
    assert MerkleTree(to_nodes(t.roots)).length == len(blocks)


@given(
    feed_key=st.binary(min_size=32, max_size=32),
    th=st.binary(min_size=32, max_size=32),
    n=st.integers(0, 2**62),
    fork=st.integers(0, 2**64 - 1),
)
def test_head_signable(feed_key: bytes, th: bytes, n: int, fork: int) -> None:
    s = head_signable(feed_key, th, n, fork)
    assert len(s) == 112
    assert s == ref.signable(feed_key, th, n, fork)


@given(distinct_blocks, st.binary(min_size=32, max_size=32), st.integers(0, 2**64 - 1))
def test_merkle_tree_signable(blocks: list[bytes], feed_key: bytes, fork: int) -> None:
    t = MerkleTree()
    t.append(blocks)
    r = ref.RefTree(blocks)
    assert t.signable(feed_key, fork) == ref.signable(feed_key, r.hash(), len(blocks), fork)


def test_node_value_semantics() -> None:
    h = bytes(range(32))
    a = TreeNode(5, h, 77)
    assert (a.index, a.hash, a.size) == (5, h, 77)
    assert a == TreeNode(5, bytearray(h), 77)
    assert hash(a) == hash(TreeNode(5, h, 77))
    assert a != TreeNode(5, h, 78)
    assert a != TreeNode(7, h, 77)
    assert a != TreeNode(5, bytes(32), 77)
    assert len({a, TreeNode(5, h, 77), TreeNode(5, h, 78)}) == 2


# -- appending ------------------------------------------------------------------------


@given(
    blocks=st.lists(st.binary(max_size=64), max_size=120),
    cuts=st.lists(st.integers(0, 120), max_size=8),
    parallel=st.booleans(),
)
def test_append_in_batches_matches_reference(blocks: list[bytes], cuts: list[int], parallel: bool) -> None:
    r = ref.RefTree()
    t = MerkleTree()
    points = sorted({min(c, len(blocks)) for c in cuts} | {len(blocks)})
    prev = 0
    for p in points:
        batch = blocks[prev:p]
        prev = p
        expected_new = [node for b in batch for node in r.append(b)]
        got_new = t.append(batch, parallel=parallel)
        assert keys(got_new) == keys(expected_new)
        assert len(got_new) == len(expected_new)
        assert keys(t.roots) == keys(r.roots)
        assert [n.index for n in t.roots] == ref.full_roots(r.length)
        assert t.hash() == r.hash()
        assert t.length == r.length
        assert t.byte_length == sum(len(b) for b in r.blocks)


@given(prefix=distinct_blocks, batch=distinct_blocks, parallel=st.booleans())
def test_tree_append_returns_every_new_node(prefix: list[bytes], batch: list[bytes], parallel: bool) -> None:
    r = ref.RefTree(prefix)
    new_nodes, new_roots = _core.tree_append(to_nodes(r.roots), batch, parallel)
    expected = [node for b in batch for node in r.append(b)]
    assert keys(new_nodes) == keys(expected)
    assert len(new_nodes) == len(expected)
    assert [key(n) for n in new_roots] == [key(n) for n in r.roots]


def test_append_large_batch_parallel_and_serial_agree() -> None:
    rng = random.Random(7)
    blocks = [rng.randbytes(rng.choice([0, 1, 100, 1024, 1025, 5000])) for _ in range(3000)]
    blocks += [rng.randbytes(1 << 20) for _ in range(3)]
    blocks += [rng.randbytes(rng.randrange(0, 3000)) for _ in range(1500)]
    r = ref.RefTree(blocks)
    serial = MerkleTree()
    serial_new = serial.append(blocks, parallel=False)
    par = MerkleTree()
    par_new = par.append([memoryview(b) for b in blocks], parallel=True)
    assert keys(serial_new) == keys(par_new) == keys(r.nodes.values())
    assert keys(serial.roots) == keys(par.roots) == keys(r.roots)
    assert serial.hash() == par.hash() == r.hash()


@given(distinct_blocks.filter(lambda bs: len(bs) >= 2))
def test_every_block_and_position_matters(blocks: list[bytes]) -> None:
    base = MerkleTree()
    base.append(blocks)
    swapped = [blocks[1], blocks[0], *blocks[2:]]
    t = MerkleTree()
    t.append(swapped)
    assert t.hash() != base.hash()
    shorter = MerkleTree()
    shorter.append(blocks[:-1])
    assert shorter.hash() != base.hash()


def test_append_zero_blocks() -> None:
    t = MerkleTree()
    t.append([b"a", b"b", b"c"])
    before = t.roots
    assert t.append([]) == []
    assert keys(t.roots) == keys(before)


# -- proof node selection -------------------------------------------------------------


@st.composite
def proof_params(draw: st.DrawFn) -> tuple[int, int, int, int]:
    n = draw(
        st.one_of(
            st.integers(0, 70),
            st.integers(0, MAX_LENGTH),
            st.integers(0, 100).map(lambda k: MAX_LENGTH - k),
            st.integers(0, 62).map(lambda k: 2**k),
        )
    )
    a = draw(st.one_of(st.just(0), st.just(n), st.integers(0, n)))
    start = draw(st.integers(0, n))
    end = draw(st.integers(start, min(n, start + 300)))
    return n, a, start, end


@given(proof_params())
def test_proof_indices_match_reference(params: tuple[int, int, int, int]) -> None:
    n, a, start, end = params
    expected = ref.proof_indices(n, a, start, end)
    assert _core.proof_indices(n, start, end, a) == expected
    assert _core.proof_indices(n, start, end, upgrade_from=a) == expected


def test_reference_shortcut_is_only_a_shortcut() -> None:
    for n in range(33):
        for a in range(n + 1):
            for start in range(n + 1):
                for end in range(start, n + 1):
                    slow = ref.proof_indices(n, a, start, end, shortcut=False)
                    assert ref.proof_indices(n, a, start, end) == slow
                    assert _core.proof_indices(n, start, end, a) == slow


@pytest.mark.timeout(60)
def test_proof_indices_huge_range_is_cheap() -> None:
    # No node is carried for a whole tree: the walk must not visit every leaf.
    assert _core.proof_indices(MAX_LENGTH, 0, MAX_LENGTH, 0) == []
    assert _core.proof_indices(MAX_LENGTH, 1, MAX_LENGTH - 1, 5) == ref.proof_indices(
        MAX_LENGTH, 5, 1, MAX_LENGTH - 1
    )
    header = ref.HEADER.pack(1, MAX_LENGTH, 0, 0, MAX_LENGTH, 0)
    assert _core.decode_proof(header) == (MAX_LENGTH, 0, 0, MAX_LENGTH, [])


def test_proof_indices_default_upgrade_from() -> None:
    assert _core.proof_indices(11, 10, 11) == ref.proof_indices(11, 0, 10, 11) == [7, 17]


# -- proofs: round trips ----------------------------------------------------------------


def check_verified(case: Case, verified: Sequence[TreeNode], expected: ref.Verified) -> None:
    """The returned nodes are all true nodes and include everything the walk learned."""
    for node in verified:
        assert key(node) == key(case.tree.nodes[node.index])
    got = {n.index for n in verified}
    roots_at_n = set(ref.full_roots(case.n))
    required = set(expected.computed) | set(expected.received) | roots_at_n
    assert required <= got, f"missing {sorted(required - got)}"
    assert got <= set(expected.all()) | roots_at_n, f"unexpected {sorted(got - set(expected.all()))}"


@given(proof_cases())
def test_create_and_verify_proof(case: Case) -> None:
    proof = case.proof()
    assert (proof.length, proof.upgrade_from, proof.start, proof.end) == (
        case.n,
        case.a,
        case.start,
        case.end,
    )
    assert [n.index for n in proof.nodes] == ref.proof_indices(case.n, case.a, case.start, case.end)
    encoded = proof.encode()
    # Byte-identical to the reference encoding.
    assert encoded == ref.make_proof(case.tree, case.n, case.a, case.start, case.end)
    assert len(encoded) == 37 + 40 * len(proof.nodes)
    trusted = case.tree.hash()
    # The reference verifier accepts hyphal's proof.
    expected = ref.verify_proof(encoded, case.range_blocks(), trusted, case.tree.roots_at(case.a))
    # So does hyphal, from a Proof, bytes, a bytearray and memoryviews of the blocks.
    for p in (proof, encoded, bytearray(encoded)):
        verified = verify_proof(p, case.range_blocks(), trusted, case.known_roots())
        check_verified(case, verified, expected)
    verified = _core.verify_proof(
        memoryview(encoded),
        [memoryview(b) for b in case.range_blocks()],
        bytearray(trusted),
        case.known_roots(),
    )
    check_verified(case, verified, expected)
    # Decoding gives back the same fields and nodes, with their flat indexes.
    decoded = Proof.decode(encoded)
    assert (decoded.length, decoded.upgrade_from, decoded.start, decoded.end) == (
        case.n,
        case.a,
        case.start,
        case.end,
    )
    assert [key(n) for n in decoded.nodes] == [key(n) for n in proof.nodes]
    assert decoded.encode() == encoded


@given(proof_cases())
def test_reference_encoding_verifies_in_hyphal(case: Case) -> None:
    encoded = ref.make_proof(case.tree, case.n, case.a, case.start, case.end)
    _core.verify_proof(encoded, case.range_blocks(), case.tree.hash(), case.known_roots())


@given(proof_cases(min_n=0, max_n=40))
def test_apply_proof_upgrades_reader(case: Case) -> None:
    reader = MerkleTree()
    reader.append(case.blocks[: case.a])
    proof = case.proof()
    nodes = reader.apply_proof(proof, case.range_blocks(), case.tree.hash())
    assert keys(reader.roots) == keys(case.tree.roots)
    assert reader.hash() == case.tree.hash()
    assert reader.length == case.n
    for node in nodes:
        assert key(node) == key(case.tree.nodes[node.index])
    # The upgraded reader keeps appending in step with the writer.
    more = [b"after-1", b"after-2", b"after-3"]
    reader.append(more)
    for b in more:
        case.tree.append(b)
    assert reader.hash() == case.tree.hash()


def test_apply_proof_from_encoded_bytes_and_wrong_length() -> None:
    case = Case([bytes([i]) * 3 for i in range(13)], a=5, start=7, end=9)
    reader = MerkleTree()
    reader.append(case.blocks[:5])
    reader.apply_proof(case.proof().encode(), case.range_blocks(), case.tree.hash())
    assert reader.hash() == case.tree.hash()
    stale = MerkleTree()
    stale.append(case.blocks[:4])
    with pytest.raises(errors.InvalidInput):
        stale.apply_proof(case.proof(), case.range_blocks(), case.tree.hash())


@pytest.mark.parametrize("n", [11, 12, 13, 16, 17, 20, 33, 100])
def test_seed_example_reader_at_nine_fetches_block_ten(n: int) -> None:
    blocks = [f"block {i}".encode() for i in range(n)]
    case = Case(blocks, a=9, start=10, end=11)
    expected_indices = ref.proof_indices(n, 9, 10, 11)
    proof = case.proof()
    assert [x.index for x in proof.nodes] == expected_indices
    assert len(proof.nodes) == len(expected_indices)
    if n == 11:
        # Roots at 9 are 7 and 16; the proof only needs block 9's leaf (18).
        assert expected_indices == [18]
    if n == 12:
        assert expected_indices == [18, 22]
    reader = MerkleTree()
    reader.append(blocks[:9])
    verified = reader.apply_proof(proof, [blocks[10]], case.tree.hash())
    assert reader.hash() == case.tree.hash()
    assert key(case.tree.nodes[20]) in {key(v) for v in verified}
    # Fewer nodes than a proof from nothing.
    assert len(proof.nodes) <= len(ref.proof_indices(n, 0, 10, 11))


@settings(max_examples=15)
@given(st.data())
def test_proofs_in_a_larger_tree(data: st.DataObject) -> None:
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    n = data.draw(st.integers(200, 1100))
    blocks = [i.to_bytes(4, "little") + rng.randbytes(rng.randrange(0, 40)) for i in range(n)]
    a = data.draw(st.integers(0, n))
    start = data.draw(st.integers(0, n))
    end = data.draw(st.integers(start, min(n, start + 50)))
    case = Case(blocks, a, start, end)
    encoded = case.proof().encode()
    assert encoded == ref.make_proof(case.tree, n, a, start, end)
    expected = ref.verify_proof(encoded, case.range_blocks(), case.tree.hash(), case.tree.roots_at(a))
    verified = verify_proof(encoded, case.range_blocks(), case.tree.hash(), case.known_roots())
    check_verified(case, verified, expected)


# -- proofs: tampering ----------------------------------------------------------------

FIELDS = {
    "version": (0, 1),
    "length": (1, 8),
    "upgrade_from": (9, 8),
    "start": (17, 8),
    "end": (25, 8),
    "count": (33, 4),
}


@pytest.mark.parametrize("name", list(FIELDS))
@given(case=proof_cases(), data=st.data())
def test_header_bit_flip_is_rejected(name: str, case: Case, data: st.DataObject) -> None:
    encoded = case.proof().encode()
    off, width = FIELDS[name]
    bit = data.draw(st.integers(off * 8, (off + width) * 8 - 1), label="bit")
    bad = ref.flip_bit(encoded, bit)
    with pytest.raises(REJECTED):
        verify_proof(bad, case.range_blocks(), case.tree.hash(), case.known_roots())
    with pytest.raises(ref.RefError):
        ref.verify_proof(bad, case.range_blocks(), case.tree.hash(), case.tree.roots_at(case.a))
    if name in ("version", "count"):
        with pytest.raises(errors.DecodeError):
            _core.decode_proof(bad)


@pytest.mark.parametrize("part", ["hash", "size"])
@given(case=proof_cases(min_n=2), data=st.data())
def test_proof_node_bit_flip_is_rejected(part: str, case: Case, data: st.DataObject) -> None:
    proof = case.proof()
    assume(len(proof.nodes) > 0)
    encoded = proof.encode()
    k = data.draw(st.integers(0, len(proof.nodes) - 1), label="node")
    off = 37 + 40 * k + (0 if part == "hash" else 32)
    width = 32 if part == "hash" else 8
    bit = data.draw(st.integers(off * 8, (off + width) * 8 - 1), label="bit")
    bad = ref.flip_bit(encoded, bit)
    # Still well-formed: only verification can notice.
    _core.decode_proof(bad)
    with pytest.raises(REJECTED):
        verify_proof(bad, case.range_blocks(), case.tree.hash(), case.known_roots())


@given(case=proof_cases(min_n=1), data=st.data())
def test_block_bit_flip_is_rejected(case: Case, data: st.DataObject) -> None:
    blocks = case.range_blocks()
    nonempty = [i for i, b in enumerate(blocks) if b]
    assume(nonempty)
    i = data.draw(st.sampled_from(nonempty), label="block")
    bit = data.draw(st.integers(0, len(blocks[i]) * 8 - 1), label="bit")
    bad_blocks = list(blocks)
    bad_blocks[i] = ref.flip_bit(blocks[i], bit)
    with pytest.raises(errors.ProofError):
        verify_proof(case.proof(), bad_blocks, case.tree.hash(), case.known_roots())


@given(case=proof_cases(min_n=1), data=st.data())
def test_block_changes_are_rejected(case: Case, data: st.DataObject) -> None:
    blocks = case.range_blocks()
    assume(blocks)
    edit = data.draw(st.sampled_from(["swap", "drop", "add", "extend", "truncate"]))
    bad = list(blocks)
    if edit == "swap":
        assume(len(blocks) >= 2)
        bad[0], bad[-1] = bad[-1], bad[0]
    elif edit == "drop":
        bad.pop(data.draw(st.integers(0, len(bad) - 1)))
    elif edit == "add":
        bad.append(b"extra")
    elif edit == "extend":
        bad[0] = bad[0] + b"\x00"
    else:
        assume(bad[-1])
        bad[-1] = bad[-1][:-1]
    with pytest.raises(errors.ProofError):
        verify_proof(case.proof(), bad, case.tree.hash(), case.known_roots())


@given(case=proof_cases(), bit=st.integers(0, 255))
def test_trusted_tree_hash_bit_flip_is_rejected(case: Case, bit: int) -> None:
    with pytest.raises(errors.ProofError):
        verify_proof(
            case.proof(), case.range_blocks(), ref.flip_bit(case.tree.hash(), bit), case.known_roots()
        )


@given(case=proof_cases(min_n=1), data=st.data())
def test_known_root_tampering_is_rejected(case: Case, data: st.DataObject) -> None:
    assume(case.a > 0)
    roots = case.tree.roots_at(case.a)
    k = data.draw(st.integers(0, len(roots) - 1))
    what = data.draw(st.sampled_from(["hash", "size", "drop", "wrong_a"]))
    bad = to_nodes(roots)
    r = roots[k]
    if what == "hash":
        bad[k] = TreeNode(r.index, ref.flip_bit(r.hash, data.draw(st.integers(0, 255))), r.size)
    elif what == "size":
        bad[k] = TreeNode(r.index, r.hash, r.size ^ (1 << data.draw(st.integers(0, 62))))
    elif what == "drop":
        bad.pop(k)
    else:
        other = data.draw(st.integers(0, case.n).filter(lambda x: x != case.a))
        bad = to_nodes(case.tree.roots_at(other))
    with pytest.raises(REJECTED):
        verify_proof(case.proof(), case.range_blocks(), case.tree.hash(), bad)


@given(case=proof_cases(min_n=1), data=st.data())
def test_forked_history_is_rejected(case: Case, data: st.DataObject) -> None:
    assume(case.a > 0)
    j = data.draw(st.integers(0, case.a - 1), label="forked block")
    forked = list(case.blocks[: case.a])
    forked[j] = forked[j] + b"<fork>"
    assume(forked[j] not in case.blocks)
    fork_tree = ref.RefTree(forked)
    assert fork_tree.hash() != ref.RefTree(case.blocks[: case.a]).hash()
    with pytest.raises(errors.ProofError):
        verify_proof(case.proof(), case.range_blocks(), case.tree.hash(), to_nodes(fork_tree.roots))
    with pytest.raises(ref.RefError):
        ref.verify_proof(case.proof().encode(), case.range_blocks(), case.tree.hash(), fork_tree.roots)
    reader = MerkleTree(to_nodes(fork_tree.roots))
    with pytest.raises(errors.ProofError):
        reader.apply_proof(case.proof(), case.range_blocks(), case.tree.hash())
    # A failed upgrade leaves the reader untouched.
    assert keys(reader.roots) == keys(fork_tree.roots)
    assert reader.hash() == fork_tree.hash()


def test_fork_rewriting_the_tail_is_rejected() -> None:
    # The writer truncated to 6 blocks and wrote new ones; a reader at 9 must not upgrade.
    old = [f"old {i}".encode() for i in range(9)]
    new = old[:6] + [f"new {i}".encode() for i in range(6, 14)]
    writer = Case(new, a=9, start=12, end=13)
    reader = MerkleTree()
    reader.append(old)
    with pytest.raises(errors.ProofError):
        reader.apply_proof(writer.proof(), writer.range_blocks(), writer.tree.hash())
    # The honest reader (same history) upgrades fine.
    honest = MerkleTree()
    honest.append(new[:9])
    honest.apply_proof(writer.proof(), writer.range_blocks(), writer.tree.hash())
    assert honest.hash() == writer.tree.hash()


# -- proofs: malformed encodings ------------------------------------------------------


@given(case=proof_cases(), data=st.data())
def test_truncated_and_extended_proofs(case: Case, data: st.DataObject) -> None:
    encoded = case.proof().encode()
    cut = data.draw(st.integers(1, len(encoded)), label="cut")
    extra = data.draw(st.binary(min_size=1, max_size=100), label="extra")
    for bad in (encoded[:-cut], encoded + extra):
        with pytest.raises(errors.DecodeError):
            _core.decode_proof(bad)
        with pytest.raises(errors.DecodeError):
            Proof.decode(bad)
        with pytest.raises(errors.DecodeError):
            verify_proof(bad, case.range_blocks(), case.tree.hash(), case.known_roots())


def _agrees_with_reference_decoder(data: bytes) -> None:
    try:
        expected = ref.decode_proof(data)
    except ref.RefDecodeError:
        with pytest.raises(errors.DecodeError):
            _core.decode_proof(data)
        return
    n, a, start, end, nodes = _core.decode_proof(data)
    assert (n, a, start, end) == expected[:4]
    assert [key(x) for x in nodes] == [key(x) for x in expected[4]]
    assert _core.encode_proof(n, a, start, end, nodes) == data


@given(st.binary(max_size=400))
def test_decode_garbage(data: bytes) -> None:
    _agrees_with_reference_decoder(data)


@st.composite
def near_proofs(draw: st.DrawFn) -> bytes:
    """Headers with plausible fields and a node count that may or may not be right."""
    small = st.integers(0, 40)
    u64 = st.one_of(small, st.integers(0, 2**64 - 1), st.sampled_from([2**62, 2**62 + 1, 2**63, 2**64 - 1]))
    version = draw(st.one_of(st.just(1), st.integers(0, 255)))
    n, a, start, end = (draw(u64) for _ in range(4))
    count = draw(st.one_of(small.map(lambda c: c % 8), st.integers(0, 2**32 - 1)))
    body_nodes = draw(st.one_of(st.just(count), st.integers(0, 8)))
    body_nodes = min(body_nodes, 8)
    body = draw(st.binary(min_size=40 * body_nodes, max_size=40 * body_nodes))
    tail = draw(st.one_of(st.just(b""), st.binary(max_size=3)))
    return struct.pack("<BQQQQI", version, n, a, start, end, count) + body + tail


@settings(max_examples=150)
@given(near_proofs())
def test_decode_near_proofs(data: bytes) -> None:
    _agrees_with_reference_decoder(data)


@given(proof_cases())
def test_decode_requires_exact_count(case: Case) -> None:
    proof = case.proof()
    nodes = list(proof.nodes)
    header = bytearray(proof.encode()[:37])
    body = proof.encode()[37:]
    for delta in (-1, 1):
        count = len(nodes) + delta
        if count < 0:
            continue
        bad_header = header[:33] + struct.pack("<I", count)
        bad_body = body[:-40] if delta < 0 else body + bytes(40)
        with pytest.raises(errors.DecodeError):
            _core.decode_proof(bytes(bad_header) + bad_body)
