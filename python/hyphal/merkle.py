"""Merkle trees over flat-tree indexes, and the one proof format (PROTOCOL.md §3-4).

The hashing and verification run in the Rust core; this module gives them
types. A :class:`MerkleTree` holds only its roots: persisting the other
nodes, and fetching them to build proofs, is the storage layer's job.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from typing_extensions import Buffer

from hyphal import _core
from hyphal._core.hash import head_signable, leaf_hash, parent_hash
from hyphal._core.merkle import TreeNode, tree_hash
from hyphal.errors import InvalidInput

MAX_LENGTH: int = _core.MAX_LENGTH


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that blocks ``[start, end)`` and the roots at ``upgrade_from`` lead to a tree of ``length``."""

    length: int
    upgrade_from: int
    start: int
    end: int
    nodes: tuple[TreeNode, ...]

    def encode(self) -> bytes:
        return _core.encode_proof(self.length, self.upgrade_from, self.start, self.end, self.nodes)

    @classmethod
    def decode(cls, data: Buffer) -> Proof:
        """Parse an encoded proof; raises :class:`~hyphal.errors.DecodeError` when malformed."""
        length, upgrade_from, start, end, nodes = _core.decode_proof(data)
        return cls(length, upgrade_from, start, end, tuple(nodes))


def create_proof(
    get_node: Callable[[int], TreeNode],
    length: int,
    start: int,
    end: int,
    upgrade_from: int = 0,
) -> Proof:
    """Build a proof for blocks ``[start, end)`` of a tree of ``length``.

    ``get_node`` returns the stored node at a flat index; every node of a
    tree of ``length`` that the proof needs must be available.
    """
    indices = _core.proof_indices(length, start, end, upgrade_from)
    nodes = tuple(get_node(i) for i in indices)
    for want, node in zip(indices, nodes, strict=True):
        if node.index != want:
            raise InvalidInput(f"get_node({want}) returned node {node.index}")
    return Proof(length, upgrade_from, start, end, nodes)


def verify_proof(
    proof: Proof | Buffer,
    blocks: Sequence[Buffer],
    tree_hash: Buffer,
    known_roots: Sequence[TreeNode] = (),
) -> list[TreeNode]:
    """Check ``proof`` and ``blocks`` against a trusted ``tree_hash``.

    ``known_roots`` are the verifier's roots at ``proof.upgrade_from``.
    Returns every node the proof verified (roots of the new tree included);
    raises :class:`~hyphal.errors.ProofError` if anything differs.
    """
    encoded = proof.encode() if isinstance(proof, Proof) else proof
    return _core.verify_proof(encoded, blocks, tree_hash, known_roots)


class MerkleTree:
    """The roots of a flat-tree Merkle tree: enough to append, hash and verify upgrades."""

    __slots__ = ("_roots",)

    def __init__(self, roots: Iterable[TreeNode] = ()) -> None:
        roots = list(roots)
        _core.tree_hash(roots)  # validates that the roots form a tree
        self._roots = roots

    @property
    def roots(self) -> list[TreeNode]:
        return list(self._roots)

    @property
    def length(self) -> int:
        """Number of blocks."""
        return _core.ft_block_range(self._roots[-1].index)[1] if self._roots else 0

    @property
    def byte_length(self) -> int:
        return sum(r.size for r in self._roots)

    def append(self, blocks: Sequence[Buffer], parallel: bool = True) -> list[TreeNode]:
        """Append ``blocks``; returns every new node (leaves and parents) for storage."""
        nodes, self._roots = _core.tree_append(self._roots, blocks, parallel)
        return nodes

    def hash(self) -> bytes:
        """The tree hash: what a feed's writer signs."""
        return _core.tree_hash(self._roots)

    def signable(self, feed_key: Buffer, fork: int) -> bytes:
        return _core.head_signable(feed_key, self.hash(), self.length, fork)

    def apply_proof(
        self, proof: Proof | Buffer, blocks: Sequence[Buffer], tree_hash: Buffer
    ) -> list[TreeNode]:
        """Verify a proof that upgrades this tree and adopt the new roots.

        The proof must have ``upgrade_from == self.length``; it proves that
        the new tree extends this one. Returns the verified nodes.
        """
        p = proof if isinstance(proof, Proof) else Proof.decode(proof)
        if p.upgrade_from != self.length:
            raise InvalidInput(f"proof upgrades from {p.upgrade_from}, tree has {self.length}")
        nodes = _core.verify_proof(p.encode(), blocks, tree_hash, self._roots)
        wanted = set(_core.ft_full_roots(p.length))
        self._roots = sorted((n for n in nodes if n.index in wanted), key=lambda n: n.index)
        return nodes

    def __repr__(self) -> str:
        return f"MerkleTree(length={self.length}, byte_length={self.byte_length})"


__all__ = [
    "MAX_LENGTH",
    "MerkleTree",
    "Proof",
    "TreeNode",
    "create_proof",
    "head_signable",
    "leaf_hash",
    "parent_hash",
    "tree_hash",
    "verify_proof",
]
