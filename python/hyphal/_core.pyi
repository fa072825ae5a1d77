"""Type stubs for the Rust extension ``hyphal._core``.

Every ``Buffer`` argument accepts any C-contiguous bytes-like object (bytes,
bytearray, memoryview, mmap, numpy arrays of uint8) and is read in place,
without a copy. Work on large inputs runs with the GIL released.

Bad arguments raise ``hyphal.errors.InvalidInput`` (a ``ValueError``);
malformed encodings raise ``hyphal.errors.DecodeError``; failed proof
verification raises ``hyphal.errors.ProofError``; failed decryption raises
``hyphal.errors.DecryptionError``.
"""

from collections.abc import Sequence
from typing import final

from typing_extensions import Buffer

__version__: str

# -- hashing -------------------------------------------------------------------

def blake3(data: Buffer, parallel: bool = False) -> bytes:
    """Plain BLAKE3 (32 bytes); equals ``b3sum``. ``parallel`` hashes on several threads."""

def keyed_hash(key: Buffer, data: Buffer) -> bytes:
    """BLAKE3 keyed mode; ``key`` is 32 bytes."""

def derive_key(context: str, material: Buffer) -> bytes:
    """BLAKE3 derive_key mode: a 32-byte key for ``context`` from ``material``."""

@final
class Hasher:
    """Incremental BLAKE3. At most one of ``key`` and ``derive_key_context``."""

    def __init__(self, key: Buffer | None = None, derive_key_context: str | None = None) -> None: ...
    def update(self, data: Buffer) -> None: ...
    def finalize(self, length: int = 32) -> bytes:
        """The first ``length`` bytes of output (1 to 65536); the hasher stays usable."""
    def copy(self) -> Hasher: ...

# -- flat tree -----------------------------------------------------------------

def ft_depth(index: int) -> int: ...
def ft_offset(index: int) -> int: ...
def ft_index(depth: int, offset: int) -> int: ...
def ft_parent(index: int) -> int: ...
def ft_sibling(index: int) -> int: ...
def ft_children(index: int) -> tuple[int, int] | None: ...
def ft_span(index: int) -> tuple[int, int]: ...
def ft_block_range(index: int) -> tuple[int, int]: ...
def ft_full_roots(length: int) -> list[int]: ...

# -- Merkle tree ---------------------------------------------------------------

MAX_LENGTH: int
LEAF_KEY: bytes
PARENT_KEY: bytes
HEAD_KEY: bytes
FEED_HEAD_NAMESPACE: bytes

@final
class Node:
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

def leaf_hash(index: int, data: Buffer) -> bytes: ...
def parent_hash(size: int, left: Buffer, right: Buffer) -> bytes: ...
def tree_hash(roots: Sequence[Node]) -> bytes:
    """The tree hash over ``roots``; they must be ``full_roots(n)`` for some ``n``."""

def head_signable(feed_key: Buffer, tree_hash: Buffer, length: int, fork: int) -> bytes: ...
def tree_append(
    roots: Sequence[Node], blocks: Sequence[Buffer], parallel: bool = True
) -> tuple[list[Node], list[Node]]:
    """Append ``blocks`` to the tree with ``roots``: (every new node, the new roots)."""

def proof_indices(length: int, start: int, end: int, upgrade_from: int = 0) -> list[int]:
    """The flat indexes of the nodes a proof carries, in proof order (PROTOCOL.md §4)."""

def encode_proof(length: int, upgrade_from: int, start: int, end: int, nodes: Sequence[Node]) -> bytes: ...
def decode_proof(data: Buffer) -> tuple[int, int, int, int, list[Node]]:
    """(length, upgrade_from, start, end, nodes); the nodes get their flat indexes."""

def verify_proof(
    proof: Buffer,
    blocks: Sequence[Buffer],
    tree_hash: Buffer,
    known_roots: Sequence[Node] = (),
) -> list[Node]:
    """Verify an encoded proof; return every node it verified, roots of the new tree included."""

# -- ed25519 -------------------------------------------------------------------

@final
class SigningKey:
    def __init__(self, seed: Buffer) -> None: ...
    @property
    def public_key(self) -> bytes: ...
    @property
    def seed(self) -> bytes: ...
    def sign(self, message: Buffer) -> bytes: ...

def ed25519_verify(public_key: Buffer, message: Buffer, signature: Buffer) -> bool: ...
def ed25519_verify_batch(
    public_keys: Sequence[Buffer], messages: Sequence[Buffer], signatures: Sequence[Buffer]
) -> bool: ...

# -- XOR distance --------------------------------------------------------------

def xor_distance(a: Buffer, b: Buffer) -> bytes: ...
def xor_compare(target: Buffer, a: Buffer, b: Buffer) -> int: ...
def bucket_index(a: Buffer, b: Buffer) -> int: ...
def xor_closest(target: Buffer, ids: Buffer, k: int) -> list[int]:
    """Positions of the ``k`` ids nearest ``target`` in a buffer of 32-byte ids, nearest first."""

def xor_sort(target: Buffer, ids: Buffer) -> list[int]:
    """Positions of all ids in a buffer of 32-byte ids, nearest ``target`` first."""

# -- AEAD ----------------------------------------------------------------------

def xchacha20poly1305_encrypt(
    key: Buffer, nonce: Buffer, plaintext: Buffer, associated_data: Buffer = b""
) -> bytes: ...
def xchacha20poly1305_decrypt(
    key: Buffer, nonce: Buffer, ciphertext: Buffer, associated_data: Buffer = b""
) -> bytes: ...
def chacha20poly1305_encrypt(
    key: Buffer, nonce: Buffer, plaintext: Buffer, associated_data: Buffer = b""
) -> bytes:
    """RFC 8439 ChaCha20-Poly1305 (12-byte nonce), the Noise cipher: ``ciphertext ‖ tag``."""

def chacha20poly1305_decrypt(
    key: Buffer, nonce: Buffer, ciphertext: Buffer, associated_data: Buffer = b""
) -> bytes: ...
def chacha20poly1305_encrypt_parts(
    key: Buffer,
    nonce: Buffer,
    parts: Sequence[Buffer],
    associated_data: Buffer = b"",
    prefix: Buffer = b"",
) -> bytes:
    """``prefix ‖ chacha20poly1305_encrypt(concatenation of parts)``: sealed without joining first.

    The prefix is neither encrypted nor authenticated: it is room for the caller's framing.
    """

def chacha20poly1305_decrypt_parts(
    key: Buffer, nonce: Buffer, parts: Sequence[Buffer], associated_data: Buffer = b""
) -> bytes:
    """``chacha20poly1305_decrypt`` of the concatenation of ``parts``, without joining them first."""

# -- blobs (docs/PROTOCOL.md §12) ----------------------------------------------

BLOB_GROUP_SIZE: int
"""Bytes in a chunk group: 16 KiB (16 BLAKE3 chunks)."""
BLOB_SEGMENT_SIZE: int
"""Plaintext bytes in one sealed segment of a private blob (``BLOB_GROUP_SIZE - 16``)."""

@final
class OutboardBuilder:
    """Incremental outboard (in-order parent nodes over 16 KiB groups) and BLAKE3 root of a blob."""

    def __init__(self) -> None: ...
    @property
    def length(self) -> int:
        """Bytes fed so far."""
    def update(self, data: Buffer) -> None:
        """Feed the next bytes (any size; whole groups are hashed in parallel, GIL released)."""
    def take_nodes(self) -> list[tuple[int, bytes]]:
        """Finished outboard nodes since the last call: ``(byte offset in the outboard, bytes)`` runs."""
    def finalize(self) -> bytes:
        """The root hash (equal to ``blake3(data)``); call :meth:`take_nodes` after it for the last nodes."""

@final
class RangeDecoder:
    """Streaming verifier of the encoded response for groups ``[start, end)`` of blob ``root``.

    :meth:`feed` takes the response in pieces of any size and returns what is
    verified so far: ``(nodes, groups)``, with ``nodes`` as ``(outboard byte
    offset, bytes)`` runs and ``groups`` as ``(first group index, bytes)``
    runs. The first byte that does not verify raises ``ProofError`` (bytes past
    the end raise ``DecodeError``); after that the decoder refuses everything.
    A response with no bytes (the empty blob) completes on ``feed(b"")``.
    """

    def __init__(self, root: Buffer, size: int, start: int, end: int) -> None: ...
    @property
    def done(self) -> bool: ...
    def feed(self, data: Buffer) -> tuple[list[tuple[int, bytes]], list[tuple[int, bytes]]]: ...

@final
class BlobSealer:
    """Streaming XChaCha20-Poly1305 sealer of a private blob under a 32-byte per-blob ``key``."""

    def __init__(self, key: Buffer) -> None: ...
    def update(self, data: Buffer) -> bytes:
        """Ciphertext of the segments ``data`` completes (the last segment is held for :meth:`finalize`)."""
    def finalize(self) -> tuple[bytes, bytes]:
        """The last segment's ciphertext and the plaintext's BLAKE3 hash."""

def blob_group_count(size: int) -> int:
    """Chunk groups in a blob of ``size`` bytes (at least 1)."""

def blob_outboard_size(size: int) -> int:
    """Bytes of the outboard of a blob of ``size`` bytes: 64 per group beyond the first."""

def blob_encoded_len(size: int, start: int, end: int) -> int:
    """Bytes of the encoded response for groups ``[start, end)``."""

def blob_outboard(data: Buffer) -> tuple[bytes, bytes]:
    """``(root, outboard)`` of a whole blob in memory."""

def blob_encode_range(root: Buffer, size: int, outboard: Buffer, data: Buffer, start: int, end: int) -> bytes:
    """The verified response for groups ``[start, end)``: pre-order parent nodes and group bytes.

    ``data`` is exactly the range's bytes; ``outboard`` the whole outboard.
    Everything is checked against ``root`` first (``ProofError`` if the store is corrupt).
    """

def blob_verify_range(root: Buffer, size: int, outboard: Buffer, data: Buffer, start: int, end: int) -> None:
    """Check stored groups ``[start, end)`` and their nodes against ``root`` like
    :func:`blob_encode_range`, encoding nothing."""

def blob_outboard_reorder(size: int, outboard: Buffer, order: str) -> bytes:
    """The in-order ``outboard`` rearranged into ``"pre"`` or ``"post"`` order: byte for byte
    bao-tree's ``PreOrderMemOutboard`` / ``PostOrderMemOutboard`` data at chunk log 4."""

def blob_sealed_size(size: int) -> int:
    """Ciphertext size of a private blob with ``size`` plaintext bytes."""

def blob_opened_size(size: int) -> int:
    """Plaintext size of a ciphertext of ``size`` bytes; ``DecodeError`` if no plaintext seals to it."""

def blob_open_groups(key: Buffer, sealed_size: int, first: int, data: Buffer) -> bytes:
    """Decrypt whole ciphertext groups ``first..`` of a private blob; ``DecryptionError`` if altered."""
