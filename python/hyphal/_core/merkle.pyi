"""``hyphal._core.merkle``: the Merkle tree node, appends and the proof format (PROTOCOL.md §3-4)."""

from collections.abc import Sequence
from typing import final

from typing_extensions import Buffer

@final
class TreeNode:
    """A Merkle tree node: flat index, 32-byte hash and the byte size it covers."""

    def __init__(self, index: int, hash: Buffer, size: int) -> None: ...
    @property
    def index(self) -> int: ...
    @property
    def hash(self) -> bytes: ...
    @property
    def size(self) -> int: ...
    def __eq__(self, other: object) -> bool: ...
    def __hash__(self) -> int: ...

def tree_hash(roots: Sequence[TreeNode]) -> bytes:
    """The tree hash over ``roots``; they must be ``full_roots(n)`` for some ``n``."""

def tree_append(
    roots: Sequence[TreeNode], blocks: Sequence[Buffer], parallel: bool = True
) -> tuple[list[TreeNode], list[TreeNode]]:
    """Append ``blocks`` to the tree with ``roots``: (every new node, the new roots)."""

def proof_indices(length: int, start: int, end: int, upgrade_from: int = 0) -> list[int]:
    """The flat indexes of the nodes a proof carries, in proof order (PROTOCOL.md §4)."""

def encode_proof(
    length: int, upgrade_from: int, start: int, end: int, nodes: Sequence[TreeNode]
) -> bytes: ...
def decode_proof(data: Buffer) -> tuple[int, int, int, int, list[TreeNode]]:
    """(length, upgrade_from, start, end, nodes); the nodes get their flat indexes."""

def verify_proof(
    proof: Buffer,
    blocks: Sequence[Buffer],
    tree_hash: Buffer,
    known_roots: Sequence[TreeNode] = (),
) -> list[TreeNode]:
    """Verify an encoded proof; return every node it verified, roots of the new tree included."""

__all__ = [
    "TreeNode",
    "decode_proof",
    "encode_proof",
    "proof_indices",
    "tree_append",
    "tree_hash",
    "verify_proof",
]
