"""hyphal: peer-to-peer, end-to-end encrypted replication for groups of devices.

The hot paths (hashing, Merkle proofs, signatures, XOR distance, AEAD) run in
the Rust extension :mod:`hyphal._core`; this package gives them typed names.
:class:`Node` (:mod:`hyphal.node`) is the node users run: identity, stores,
DHT, connections and groups in one ``async with``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal import errors, flat_tree

# The one version, Cargo.toml's: compiled into the extension, and the same
# string maturin writes into the wheel's metadata (so a checkout knows it too).
from hyphal._core import __version__
from hyphal._lazy import lazy_exports
from hyphal.aead import open, seal  # noqa: A004
from hyphal.errors import (
    DecodeError,
    DecryptionError,
    HyphalError,
    InvalidInput,
    ProofError,
    SignatureError,
    VerificationError,
)
from hyphal.hashing import Hasher, blake3, derive_key, keyed_hash
from hyphal.merkle import MerkleTree, Proof, TreeNode, create_proof, verify_proof
from hyphal.signing import KeyPair, verify, verify_batch
from hyphal.xor import bucket_index, xor_closest, xor_compare, xor_distance, xor_sort

if TYPE_CHECKING:
    from hyphal.node import Node

# The node users run loads anyio, sockets and SQLite: imported on first use only.
__getattr__, __dir__ = lazy_exports(__name__, {"Node": "hyphal.node"})

__all__ = [
    "DecodeError",
    "DecryptionError",
    "Hasher",
    "HyphalError",
    "InvalidInput",
    "KeyPair",
    "MerkleTree",
    "Node",
    "Proof",
    "ProofError",
    "SignatureError",
    "TreeNode",
    "VerificationError",
    "__version__",
    "blake3",
    "bucket_index",
    "create_proof",
    "derive_key",
    "errors",
    "flat_tree",
    "keyed_hash",
    "open",
    "seal",
    "verify",
    "verify_batch",
    "verify_proof",
    "xor_closest",
    "xor_compare",
    "xor_distance",
    "xor_sort",
]
