"""Private blobs: stored and served as ciphertext only (docs/PROTOCOL.md §12.4).

The plaintext is sealed in Rust with XChaCha20-Poly1305 in segments of
``BLOB_SEGMENT_SIZE`` bytes, each exactly one 16 KiB chunk group once
sealed, under a random per-blob key and the nonce ``u64le(index) ‖ u8(last)
‖ 0¹⁵``. The store, and any provider or backup server, sees an ordinary
blob: the ciphertext, whose id is its BLAKE3. Only a holder of the
:class:`PrivateBlob` reference (ciphertext id, key, plaintext size and
plaintext BLAKE3) can read it or learn the plaintext hash.
"""

from __future__ import annotations

import os
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from typing_extensions import Buffer

from hyphal import _core
from hyphal.blobs.blob_store import GROUP_SIZE, BlobStore, TempTag
from hyphal.errors import DecodeError, DecryptionError, InvalidInput

MAGIC = b"HYPHALP1"
_REF = struct.Struct("<8s32s32sQ32s")
SEGMENT_SIZE: int = _core.BLOB_SEGMENT_SIZE


@dataclass(frozen=True)
class PrivateBlob:
    """What a key holder needs to read a private blob; keep it secret."""

    hash: bytes
    """The ciphertext blob's id: what providers store and serve."""
    key: bytes
    size: int
    """Plaintext bytes."""
    plaintext_hash: bytes

    def to_bytes(self) -> bytes:
        return _REF.pack(MAGIC, self.hash, self.key, self.size, self.plaintext_hash)

    @classmethod
    def from_bytes(cls, data: Buffer) -> PrivateBlob:
        raw = bytes(data)
        if len(raw) != _REF.size or raw[:8] != MAGIC:
            raise DecodeError("not a private blob reference")
        _, hash_, key, size, plain = _REF.unpack(raw)
        return cls(hash_, key, size, plain)


def _seal_into(store: BlobStore, chunks: Iterator[Buffer], key: bytes) -> tuple[PrivateBlob, TempTag]:
    sealer = _core.BlobSealer(key)
    size = 0
    with store.importer() as imp:
        for chunk in chunks:
            size += memoryview(chunk).nbytes
            imp.write(sealer.update(chunk))
        last, plain_hash = sealer.finalize()
        imp.write(last)
        tag = imp.finish()
    return PrivateBlob(tag.hash, key, size, plain_hash), tag


def import_private_file(
    store: BlobStore, path: str | os.PathLike[str], key: bytes | None = None
) -> tuple[PrivateBlob, TempTag]:
    """Seal a file into the store; returns its reference and a temp tag on the ciphertext blob."""

    def pieces() -> Iterator[Buffer]:
        with open(path, "rb") as f:
            while piece := f.read(8 * 2**20):
                yield piece

    return _seal_into(store, pieces(), key or secrets.token_bytes(32))


def import_private_bytes(
    store: BlobStore, data: Buffer, key: bytes | None = None
) -> tuple[PrivateBlob, TempTag]:
    return _seal_into(store, iter([data]), key or secrets.token_bytes(32))


def iter_private(store: BlobStore, ref: PrivateBlob) -> Iterator[bytes]:
    """The plaintext, in pieces; the last piece is released only once the plaintext hash matches."""
    if len(ref.key) != 32:
        raise InvalidInput("a private blob key is 32 bytes")
    info = store.info(ref.hash)
    if info is None or _core.blob_opened_size(info.size) != ref.size:
        raise DecodeError("the ciphertext blob does not match the reference's size")
    hasher = _core.Hasher()
    group = 0
    held: bytes | None = None
    for piece in store.iter_verified(ref.hash):
        plain = _core.blob_open_groups(ref.key, info.size, group, piece)
        group += -(-len(piece) // GROUP_SIZE)
        hasher.update(plain)
        if held is not None:
            yield held
        held = plain
    if hasher.finalize() != ref.plaintext_hash:
        raise DecryptionError("private blob plaintext does not match its hash")
    if held is not None:
        yield held


def read_private_range(store: BlobStore, ref: PrivateBlob, offset: int, length: int) -> bytes:
    """Plaintext bytes ``[offset, offset + length)``, from just the groups that hold them.

    Works on partial blobs too. Each segment's tag authenticates it under the
    blob's key, its index and whether it is the last, so no other bytes are
    needed (the plaintext hash covers only whole reads).
    """
    if offset < 0 or length < 0 or offset > ref.size:
        raise InvalidInput(f"range at {offset} is outside a private blob of {ref.size} bytes")
    info = store.info(ref.hash)
    if info is None or _core.blob_opened_size(info.size) != ref.size:
        raise DecodeError("the ciphertext blob does not match the reference's size")
    end = min(ref.size, offset + length)
    first = offset // SEGMENT_SIZE
    last = max(first + 1, -(-end // SEGMENT_SIZE))
    sealed = store.read(ref.hash, first * GROUP_SIZE, (last - first) * GROUP_SIZE)
    plain = _core.blob_open_groups(ref.key, info.size, first, sealed)
    at = first * SEGMENT_SIZE
    return plain[offset - at : end - at]


def read_private(store: BlobStore, ref: PrivateBlob) -> bytes:
    return b"".join(iter_private(store, ref))


def export_private_file(store: BlobStore, ref: PrivateBlob, path: str | os.PathLike[str]) -> None:
    target = Path(path)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "wb") as out:
            for piece in iter_private(store, ref):
                out.write(piece)
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = [
    "PrivateBlob",
    "export_private_file",
    "import_private_bytes",
    "import_private_file",
    "iter_private",
    "read_private",
    "read_private_range",
]
