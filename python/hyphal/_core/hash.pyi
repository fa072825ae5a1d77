"""``hyphal._core.hash``: BLAKE3 in its three modes, and the domain-separated hashes of the Merkle tree."""

from typing import final

from typing_extensions import Buffer

LEAF_KEY: bytes
PARENT_KEY: bytes
HEAD_KEY: bytes
FEED_HEAD_NAMESPACE: bytes

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

def leaf_hash(index: int, data: Buffer) -> bytes: ...
def parent_hash(size: int, left: Buffer, right: Buffer) -> bytes: ...
def head_signable(feed_key: Buffer, tree_hash: Buffer, length: int, fork: int) -> bytes: ...

__all__ = [
    "FEED_HEAD_NAMESPACE",
    "HEAD_KEY",
    "LEAF_KEY",
    "PARENT_KEY",
    "Hasher",
    "blake3",
    "derive_key",
    "head_signable",
    "keyed_hash",
    "leaf_hash",
    "parent_hash",
]
