"""A slow, obviously-correct pure-Python reference of docs/PROTOCOL.md §1-4.

Written from the spec alone. Nothing here is clever: every function is the
spec's sentence turned into Python, with arbitrary-precision ints so that the
tests can decide separately what is in range. The Rust core must agree with
this module byte for byte.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from blake3 import blake3

# -- §1 hash domains -----------------------------------------------------------


def H(data: bytes) -> bytes:
    """Plain BLAKE3, 32 bytes."""
    return blake3(data).digest()


def KH(key: bytes, data: bytes) -> bytes:
    """Keyed BLAKE3, 32 bytes."""
    return blake3(data, key=key).digest()


def DK(context: str) -> bytes:
    """BLAKE3 derive_key with empty key material."""
    return blake3(b"", derive_key_context=context).digest()


LEAF_KEY = DK("hyphal 2026-11 merkle leaf")
PARENT_KEY = DK("hyphal 2026-11 merkle parent")
HEAD_KEY = DK("hyphal 2026-11 merkle tree head")
FEED_HEAD_NAMESPACE = DK("hyphal 2026-11 feed head signature")

MAX_LENGTH = 2**62
INDEX_LIMIT = 2**63  # flat indexes are < 2^63
U64_LIMIT = 2**64


class RefError(Exception):
    """Anything the reference rejects."""


class RefDecodeError(RefError):
    """The bytes are not a well-formed proof encoding."""


class RefProofError(RefError):
    """The proof does not lead to the trusted tree hash."""


def u64le(x: int) -> bytes:
    if not 0 <= x < U64_LIMIT:
        raise RefError(f"{x} does not fit in u64")
    return struct.pack("<Q", x)


def u32le(x: int) -> bytes:
    if not 0 <= x < 2**32:
        raise RefError(f"{x} does not fit in u32")
    return struct.pack("<I", x)


# -- §2 flat tree --------------------------------------------------------------
# These are the spec's formulas over unbounded ints; they only refuse negative
# inputs (which have no trailing-ones depth). Range checks are the tests' job.


def depth(x: int) -> int:
    """Number of trailing 1 bits of ``x``."""
    if x < 0:
        raise RefError("negative index")
    d = 0
    while (x >> d) & 1:
        d += 1
    return d


def offset(x: int) -> int:
    return x >> (depth(x) + 1)


def index(d: int, o: int) -> int:
    if d < 0 or o < 0:
        raise RefError("negative depth or offset")
    return (o << (d + 1)) | ((1 << d) - 1)


def parent(x: int) -> int:
    return index(depth(x) + 1, offset(x) >> 1)


def sibling(x: int) -> int:
    return index(depth(x), offset(x) ^ 1)


def children(x: int) -> tuple[int, int] | None:
    d = depth(x)
    if d == 0:
        return None
    half = 2 ** (d - 1)
    return (x - half, x + half)


def span(x: int) -> tuple[int, int]:
    d = depth(x)
    return (x - (2**d - 1), x + (2**d - 1))


def block_range(x: int) -> tuple[int, int]:
    first, last = span(x)
    return (first // 2, last // 2 + 1)


def result_in_range(name: str, x: int) -> bool:
    """Whether flat-tree function ``name`` has an in-range answer at ``x``.

    Every flat index fits in 63 bits (PROTOCOL.md §2), so an answer that would
    name an index >= 2^63 is an invalid argument too. Only the node 2^63 - 1
    (depth 63) has a span past 2^63; parents and siblings leave the range
    near the top.
    """
    if not 0 <= x < INDEX_LIMIT:
        return False
    if name in ("depth", "offset"):
        return True
    if name == "parent":
        return parent(x) < INDEX_LIMIT
    if name == "sibling":
        return sibling(x) < INDEX_LIMIT
    assert name in ("children", "span", "block_range")
    return span(x)[1] < INDEX_LIMIT


def full_roots(n: int) -> list[int]:
    if n < 0:
        raise RefError("negative length")
    roots = []
    covered = 0
    for k in range(n.bit_length() - 1, -1, -1):
        if n & (1 << k):
            roots.append(2 * covered + 2**k - 1)
            covered += 2**k
    return roots


# -- §3 Merkle nodes -----------------------------------------------------------


@dataclass(frozen=True)
class RNode:
    index: int
    hash: bytes
    size: int

    def key(self) -> tuple[int, bytes, int]:
        return (self.index, self.hash, self.size)


def leaf_hash(i: int, data: bytes) -> bytes:
    # The index and length follow the data (PROTOCOL.md §3).
    return KH(LEAF_KEY, bytes(data) + u64le(i) + u64le(len(data)))


def parent_hash(size: int, left: bytes, right: bytes) -> bytes:
    return KH(PARENT_KEY, u64le(size) + left + right)


def leaf(i: int, data: bytes) -> RNode:
    return RNode(2 * i, leaf_hash(i, data), len(data))


def parent_node(left: RNode, right: RNode) -> RNode:
    if sibling(left.index) != right.index or left.index > right.index:
        raise RefError("not a left/right sibling pair")
    size = left.size + right.size
    if size >= U64_LIMIT:
        raise RefProofError("size overflows u64")
    return RNode(parent(left.index), parent_hash(size, left.hash, right.hash), size)


def length_of(roots: Sequence[RNode]) -> int:
    """The number of blocks of a tree with these roots (which must form a tree)."""
    n = block_range(roots[-1].index)[1] if roots else 0
    if [r.index for r in roots] != full_roots(n):
        raise RefError("roots do not form a tree")
    return n


def tree_hash(roots: Sequence[RNode]) -> bytes:
    n = length_of(roots)
    body = u64le(n)
    for r in roots:
        body += r.hash + u64le(r.size)
    return KH(HEAD_KEY, body)


def signable(feed_key: bytes, th: bytes, n: int, fork: int) -> bytes:
    assert len(feed_key) == 32
    assert len(th) == 32
    return FEED_HEAD_NAMESPACE + feed_key + th + u64le(n) + u64le(fork)


class RefTree:
    """A whole Merkle tree kept in memory: every node by flat index."""

    def __init__(self, blocks: Sequence[bytes] = ()) -> None:
        self.roots: list[RNode] = []
        self.nodes: dict[int, RNode] = {}
        self.blocks: list[bytes] = []
        for b in blocks:
            self.append(b)

    @property
    def length(self) -> int:
        return len(self.blocks)

    def append(self, block: bytes) -> list[RNode]:
        """Append one block; return the new nodes (leaf first, then parents upward)."""
        new = [leaf(self.length, block)]
        self.blocks.append(bytes(block))
        self.roots.append(new[0])
        while len(self.roots) >= 2 and sibling(self.roots[-1].index) == self.roots[-2].index:
            right = self.roots.pop()
            left = self.roots.pop()
            p = parent_node(left, right)
            self.roots.append(p)
            new.append(p)
        for node in new:
            self.nodes[node.index] = node
        return new

    def hash(self) -> bytes:
        return tree_hash(self.roots)

    def roots_at(self, a: int) -> list[RNode]:
        """The roots of this tree's prefix of ``a`` blocks (all those nodes exist)."""
        assert 0 <= a <= self.length
        return [self.nodes[x] for x in full_roots(a)]


# -- §4 proofs -----------------------------------------------------------------

VERSION = 1
HEADER = struct.Struct("<BQQQQI")  # version, n, upgrade_from, start, end, count
NODE_SIZE = 40
assert HEADER.size == 37


def check_proof_params(n: int, a: int, start: int, end: int) -> None:
    if not (0 <= a <= n and 0 <= start <= end <= n and n <= MAX_LENGTH):
        raise RefError(f"bad proof parameters n={n} a={a} start={start} end={end}")


def _overlaps(s: int, e: int, start: int, end: int) -> bool:
    # Written as max < min so that an empty range overlaps nothing.
    return max(s, start) < min(e, end)


def proof_indices(n: int, a: int, start: int, end: int, shortcut: bool = True) -> list[int]:
    """The flat indexes of the nodes a proof carries, in walk order."""
    check_proof_params(n, a, start, end)
    a_roots = set(full_roots(a))
    carried: list[int] = []

    def visit(x: int) -> None:
        s, e = block_range(x)
        if depth(x) == 0 and start <= s < end:
            return  # case 1: the verifier hashes the block
        if shortcut and start <= s and e <= end:
            # Shortcut, not a rule: below a node wholly inside the range every
            # leaf is case 1 and every inner node case 3, so nothing is carried.
            # It keeps the walk O(log n) for huge ranges.
            return
        if not _overlaps(s, e, start, end) and not (s < a < e):
            if x not in a_roots:  # case 2
                carried.append(x)
            return
        kids = children(x)  # case 3
        assert kids is not None
        visit(kids[0])
        visit(kids[1])

    for r in full_roots(n):
        visit(r)
    return carried


def encode_proof(n: int, a: int, start: int, end: int, nodes: Sequence[tuple[bytes, int]]) -> bytes:
    """``nodes`` are (hash, size) pairs in proof order."""
    out = HEADER.pack(VERSION, n, a, start, end, len(nodes))
    for h, size in nodes:
        assert len(h) == 32
        out += h + u64le(size)
    return out


def make_proof(tree: RefTree, n: int, a: int, start: int, end: int) -> bytes:
    """The encoded proof for ``tree``'s prefix of ``n`` blocks."""
    assert n <= tree.length
    idx = proof_indices(n, a, start, end)
    return encode_proof(n, a, start, end, [(tree.nodes[x].hash, tree.nodes[x].size) for x in idx])


def decode_proof(data: bytes) -> tuple[int, int, int, int, list[RNode]]:
    data = bytes(data)
    if len(data) < HEADER.size:
        raise RefDecodeError("too short")
    version, n, a, start, end, count = HEADER.unpack_from(data)
    if version != VERSION:
        raise RefDecodeError("wrong version")
    if len(data) != HEADER.size + NODE_SIZE * count:
        raise RefDecodeError("wrong length")
    try:
        check_proof_params(n, a, start, end)
    except RefError as e:
        raise RefDecodeError(str(e)) from None
    # Only walk when the count is plausible (the length check bounds it).
    idx = proof_indices(n, a, start, end)
    if len(idx) != count:
        raise RefDecodeError("wrong node count")
    nodes = []
    for k, x in enumerate(idx):
        off = HEADER.size + NODE_SIZE * k
        h = data[off : off + 32]
        (size,) = struct.unpack_from("<Q", data, off + 32)
        nodes.append(RNode(x, h, size))
    return n, a, start, end, nodes


@dataclass
class Verified:
    """What a successful reference verification learned."""

    roots: list[RNode]  # the roots at n
    computed: dict[int, RNode]  # nodes computed (cases 1 and 3)
    received: dict[int, RNode]  # nodes taken from the proof
    from_known: dict[int, RNode]  # nodes taken from the verifier's roots at a

    def all(self) -> dict[int, RNode]:
        return {**self.from_known, **self.received, **self.computed}


def verify_proof(
    proof: bytes, blocks: Sequence[bytes], trusted: bytes, known_roots: Sequence[RNode] = ()
) -> Verified:
    n, a, start, end, nodes = decode_proof(proof)
    if len(blocks) != end - start:
        raise RefProofError("wrong number of blocks")
    if [r.index for r in known_roots] != full_roots(a):
        raise RefProofError("known roots are not full_roots(upgrade_from)")
    known = {r.index: r for r in known_roots}
    queue = list(nodes)
    out = Verified([], {}, {}, {})

    def check_known(node: RNode) -> None:
        if node.index in known and known[node.index] != node:
            raise RefProofError("computed node differs from a known root")

    def visit(x: int) -> RNode:
        s, e = block_range(x)
        if depth(x) == 0 and start <= s < end:
            node = leaf(s, blocks[s - start])
            check_known(node)
            out.computed[x] = node
            return node
        if not _overlaps(s, e, start, end) and not (s < a < e):
            if x in known:
                out.from_known[x] = known[x]
                return known[x]
            if not queue:
                raise RefProofError("proof has too few nodes")
            node = queue.pop(0)
            assert node.index == x
            out.received[x] = node
            return node
        kids = children(x)
        assert kids is not None
        left = visit(kids[0])
        right = visit(kids[1])
        node = parent_node(left, right)
        check_known(node)
        out.computed[x] = node
        return node

    out.roots = [visit(r) for r in full_roots(n)]
    if queue:
        raise RefProofError("proof has too many nodes")
    if tree_hash(out.roots) != trusted:
        raise RefProofError("tree hash differs")
    return out


# -- test helpers ----------------------------------------------------------------


def flip_bit(data: bytes, bit: int) -> bytes:
    """``data`` with bit ``bit`` (0 = lowest bit of the first byte) inverted."""
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)
