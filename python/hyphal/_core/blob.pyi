"""``hyphal._core.blob``: outboards, verified ranges and private (sealed) blobs (docs/PROTOCOL.md §12)."""

from typing import final

from typing_extensions import Buffer

GROUP_SIZE: int
"""Bytes in a chunk group: 16 KiB (16 BLAKE3 chunks)."""
SEGMENT_SIZE: int
"""Plaintext bytes in one sealed segment of a private blob (``GROUP_SIZE - 16``)."""

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

def group_count(size: int) -> int:
    """Chunk groups in a blob of ``size`` bytes (at least 1)."""

def outboard_size(size: int) -> int:
    """Bytes of the outboard of a blob of ``size`` bytes: 64 per group beyond the first."""

def encoded_len(size: int, start: int, end: int) -> int:
    """Bytes of the encoded response for groups ``[start, end)``."""

def outboard(data: Buffer) -> tuple[bytes, bytes]:
    """``(root, outboard)`` of a whole blob in memory."""

def encode_range(root: Buffer, size: int, outboard: Buffer, data: Buffer, start: int, end: int) -> bytes:
    """The verified response for groups ``[start, end)``: pre-order parent nodes and group bytes.

    ``data`` is exactly the range's bytes; ``outboard`` the whole outboard.
    Everything is checked against ``root`` first (``ProofError`` if the store is corrupt).
    """

def verify_range(root: Buffer, size: int, outboard: Buffer, data: Buffer, start: int, end: int) -> None:
    """Check stored groups ``[start, end)`` and their nodes against ``root`` like
    :func:`encode_range`, encoding nothing."""

def outboard_reorder(size: int, outboard: Buffer, order: str) -> bytes:
    """The in-order ``outboard`` rearranged into ``"pre"`` or ``"post"`` order: byte for byte
    bao-tree's ``PreOrderMemOutboard`` / ``PostOrderMemOutboard`` data at chunk log 4."""

def sealed_size(size: int) -> int:
    """Ciphertext size of a private blob with ``size`` plaintext bytes."""

def opened_size(size: int) -> int:
    """Plaintext size of a ciphertext of ``size`` bytes; ``DecodeError`` if no plaintext seals to it."""

def open_groups(key: Buffer, sealed_size: int, first: int, data: Buffer) -> bytes:
    """Decrypt whole ciphertext groups ``first..`` of a private blob; ``DecryptionError`` if altered."""

__all__ = [
    "GROUP_SIZE",
    "SEGMENT_SIZE",
    "BlobSealer",
    "OutboardBuilder",
    "RangeDecoder",
    "encode_range",
    "encoded_len",
    "group_count",
    "open_groups",
    "opened_size",
    "outboard",
    "outboard_reorder",
    "outboard_size",
    "sealed_size",
    "verify_range",
]
