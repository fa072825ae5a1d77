"""Type stubs for the Rust extension ``hyphal._core``.

The extension holds one submodule per topic, each binding the Rust core module
of the same name: :mod:`~hyphal._core.hash`, :mod:`~hyphal._core.flat_tree`,
:mod:`~hyphal._core.merkle`, :mod:`~hyphal._core.sign`, :mod:`~hyphal._core.xor`,
:mod:`~hyphal._core.aead` and :mod:`~hyphal._core.blob`. Both
``from hyphal._core import merkle`` and ``import hyphal._core.merkle`` work.
Every name is also here under its older flat name, the same object
(``ft_parent`` is ``flat_tree.parent``, ``Node`` is ``merkle.TreeNode``).

Every ``Buffer`` argument accepts any C-contiguous bytes-like object (bytes,
bytearray, memoryview, mmap, numpy arrays of uint8) and is read in place,
without a copy. Work on large inputs runs with the GIL released.

Bad arguments raise ``hyphal.errors.InvalidInput`` (a ``ValueError``);
malformed encodings raise ``hyphal.errors.DecodeError``; failed proof
verification raises ``hyphal.errors.ProofError``; failed decryption raises
``hyphal.errors.DecryptionError``.
"""

from hyphal._core import aead as aead
from hyphal._core import blob as blob
from hyphal._core import flat_tree as flat_tree
from hyphal._core import hash as hash
from hyphal._core import merkle as merkle
from hyphal._core import sign as sign
from hyphal._core import xor as xor
from hyphal._core.aead import (
    chacha20poly1305_decrypt,
    chacha20poly1305_decrypt_parts,
    chacha20poly1305_encrypt,
    chacha20poly1305_encrypt_parts,
    xchacha20poly1305_decrypt,
    xchacha20poly1305_encrypt,
)
from hyphal._core.blob import (
    GROUP_SIZE as BLOB_GROUP_SIZE,
)
from hyphal._core.blob import (
    SEGMENT_SIZE as BLOB_SEGMENT_SIZE,
)
from hyphal._core.blob import (
    BlobSealer,
    OutboardBuilder,
    RangeDecoder,
)
from hyphal._core.blob import (
    encode_range as blob_encode_range,
)
from hyphal._core.blob import (
    encoded_len as blob_encoded_len,
)
from hyphal._core.blob import (
    group_count as blob_group_count,
)
from hyphal._core.blob import (
    open_groups as blob_open_groups,
)
from hyphal._core.blob import (
    opened_size as blob_opened_size,
)
from hyphal._core.blob import (
    outboard as blob_outboard,
)
from hyphal._core.blob import (
    outboard_reorder as blob_outboard_reorder,
)
from hyphal._core.blob import (
    outboard_size as blob_outboard_size,
)
from hyphal._core.blob import (
    sealed_size as blob_sealed_size,
)
from hyphal._core.blob import (
    verify_range as blob_verify_range,
)
from hyphal._core.flat_tree import (
    MAX_LENGTH,
)
from hyphal._core.flat_tree import (
    block_range as ft_block_range,
)
from hyphal._core.flat_tree import (
    children as ft_children,
)
from hyphal._core.flat_tree import (
    depth as ft_depth,
)
from hyphal._core.flat_tree import (
    full_roots as ft_full_roots,
)
from hyphal._core.flat_tree import (
    index as ft_index,
)
from hyphal._core.flat_tree import (
    offset as ft_offset,
)
from hyphal._core.flat_tree import (
    parent as ft_parent,
)
from hyphal._core.flat_tree import (
    sibling as ft_sibling,
)
from hyphal._core.flat_tree import (
    span as ft_span,
)
from hyphal._core.hash import (
    FEED_HEAD_NAMESPACE,
    HEAD_KEY,
    LEAF_KEY,
    PARENT_KEY,
    Hasher,
    blake3,
    derive_key,
    head_signable,
    keyed_hash,
    leaf_hash,
    parent_hash,
)
from hyphal._core.merkle import (
    TreeNode,
    decode_proof,
    encode_proof,
    proof_indices,
    tree_append,
    tree_hash,
    verify_proof,
)
from hyphal._core.sign import (
    SigningKey,
)
from hyphal._core.sign import (
    verify as ed25519_verify,
)
from hyphal._core.sign import (
    verify_batch as ed25519_verify_batch,
)
from hyphal._core.xor import (
    bucket_index,
)
from hyphal._core.xor import (
    closest as xor_closest,
)
from hyphal._core.xor import (
    compare as xor_compare,
)
from hyphal._core.xor import (
    distance as xor_distance,
)
from hyphal._core.xor import (
    sort as xor_sort,
)

__version__: str

# The Merkle node's name before it became ``TreeNode``.
Node = TreeNode

__all__ = [
    "BLOB_GROUP_SIZE",
    "BLOB_SEGMENT_SIZE",
    "FEED_HEAD_NAMESPACE",
    "HEAD_KEY",
    "LEAF_KEY",
    "MAX_LENGTH",
    "PARENT_KEY",
    "BlobSealer",
    "Hasher",
    "Node",
    "OutboardBuilder",
    "RangeDecoder",
    "SigningKey",
    "TreeNode",
    "__version__",
    "aead",
    "blake3",
    "blob",
    "blob_encode_range",
    "blob_encoded_len",
    "blob_group_count",
    "blob_open_groups",
    "blob_opened_size",
    "blob_outboard",
    "blob_outboard_reorder",
    "blob_outboard_size",
    "blob_sealed_size",
    "blob_verify_range",
    "bucket_index",
    "chacha20poly1305_decrypt",
    "chacha20poly1305_decrypt_parts",
    "chacha20poly1305_encrypt",
    "chacha20poly1305_encrypt_parts",
    "decode_proof",
    "derive_key",
    "ed25519_verify",
    "ed25519_verify_batch",
    "encode_proof",
    "flat_tree",
    "ft_block_range",
    "ft_children",
    "ft_depth",
    "ft_full_roots",
    "ft_index",
    "ft_offset",
    "ft_parent",
    "ft_sibling",
    "ft_span",
    "hash",
    "head_signable",
    "keyed_hash",
    "leaf_hash",
    "merkle",
    "parent_hash",
    "proof_indices",
    "sign",
    "tree_append",
    "tree_hash",
    "verify_proof",
    "xchacha20poly1305_decrypt",
    "xchacha20poly1305_encrypt",
    "xor",
    "xor_closest",
    "xor_compare",
    "xor_distance",
    "xor_sort",
]
