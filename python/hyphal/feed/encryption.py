"""Block encryption for feeds created with ``encrypted=True``.

Who holds the key: everyone who verifies a feed needs its feed key (it is
part of every signed head), including relays and backup servers that should
store and serve blocks without reading them. So the block key is *not*
derivable from the feed key alone; it comes from a separate 32-byte **read
secret** that readers get out of band (an invite, a group secret):

    block_key = derive_key("hyphal 2026-11 feed block encryption", read_secret ‖ feed_key)

Binding the feed key in means one read secret (say, a group's) gives every
feed its own block key. A 1-of-1 writer needs to store nothing extra: its
default read secret is derived from its signing seed and the feed key.

Stored (and replicated) blocks are ``u64le(fork) ‖ XChaCha20-Poly1305(block_key,
nonce, plaintext)`` with ``nonce = u64le(index) ‖ u64le(fork) ‖ 0^8``. The
Merkle tree hashes these ciphertexts, so a relay without the read secret can
verify, store and serve them. Within one fork an index is written once, and a
truncation bumps the fork, so no nonce repeats under a key. The fork travels
in the block because a block kept across a truncation was sealed in an older
fork than the feed's current one.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from typing_extensions import Buffer

from hyphal import _core
from hyphal.aead import TAG_SIZE, open, seal  # noqa: A004
from hyphal.errors import DecryptionError, InvalidInput

BLOCK_KEY_CONTEXT = "hyphal 2026-11 feed block encryption"
READ_SECRET_CONTEXT = "hyphal 2026-11 feed read secret"
READ_SECRET_SIZE = 32
FORK_PREFIX_SIZE = 8
OVERHEAD = FORK_PREFIX_SIZE + TAG_SIZE

_U64 = struct.Struct("<Q")


def default_read_secret(seed: Buffer, feed_key: Buffer) -> bytes:
    """A 1-of-1 writer's read secret: ``derive_key(READ_SECRET_CONTEXT, seed ‖ feed_key)``."""
    return _core.derive_key(READ_SECRET_CONTEXT, bytes(seed) + bytes(feed_key))


def block_nonce(index: int, fork: int) -> bytes:
    """``u64le(index) ‖ u64le(fork) ‖ 0^8``: unique per (index, fork)."""
    return struct.pack("<QQ8x", index, fork)


class BlockCipher:
    """Seals and opens the stored form of one feed's blocks."""

    __slots__ = ("_key",)

    def __init__(self, read_secret: Buffer, feed_key: Buffer) -> None:
        secret, key = bytes(read_secret), bytes(feed_key)
        if len(secret) != READ_SECRET_SIZE or len(key) != 32:
            raise InvalidInput("a read secret and a feed key are 32 bytes each")
        self._key = _core.derive_key(BLOCK_KEY_CONTEXT, secret + key)

    def seal(self, index: int, fork: int, plaintext: Buffer) -> bytes:
        return _U64.pack(fork) + seal(self._key, block_nonce(index, fork), plaintext)

    def seal_batch(self, start: int, fork: int, blocks: Sequence[Buffer]) -> list[bytes]:
        return [self.seal(start + i, fork, block) for i, block in enumerate(blocks)]

    def open(self, index: int, stored: Buffer) -> bytes:
        """The plaintext of stored block ``index``; :class:`DecryptionError` if altered or foreign."""
        view = memoryview(stored)
        if len(view) < OVERHEAD:
            raise DecryptionError(f"encrypted block {index} is shorter than its overhead")
        (fork,) = _U64.unpack_from(view)
        return open(self._key, block_nonce(index, fork), view[FORK_PREFIX_SIZE:])

    def __repr__(self) -> str:
        return "BlockCipher(<secret>)"


__all__ = [
    "BLOCK_KEY_CONTEXT",
    "OVERHEAD",
    "READ_SECRET_CONTEXT",
    "READ_SECRET_SIZE",
    "BlockCipher",
    "block_nonce",
    "default_read_secret",
]
