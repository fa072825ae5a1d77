"""Collections: a blob that maps names to blob hashes (docs/PROTOCOL.md §12.3).

Encoding (canonical, so equal collections have equal hashes)::

    "HYPHALC1" ‖ u32le(count) ‖ count * (u16le(len(name)) ‖ name ‖ hash[32])

Names are non-empty UTF-8 of at most 1024 bytes, in strictly increasing
byte order (so unique). Decoding checks the blob's BLAKE3 against the
expected hash before it looks at a byte.
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterator, Mapping

from typing_extensions import Buffer

from hyphal import _core
from hyphal.errors import DecodeError, InvalidInput, ProofError

log = logging.getLogger("hyphal.blobs")

MAGIC = b"HYPHALC1"
MAX_NAME = 1024
MAX_ENTRIES = 1 << 20
MAX_COLLECTION_SIZE = len(MAGIC) + 4 + MAX_ENTRIES * (2 + 64 + 32)
_COUNT = struct.Struct("<I")
_NAME_LEN = struct.Struct("<H")


class Collection(Mapping[str, bytes]):
    """An immutable name → blob hash mapping."""

    def __init__(self, entries: Mapping[str, bytes] | None = None) -> None:
        items: dict[str, bytes] = {}
        for name, hash_ in (entries or {}).items():
            raw = name.encode("utf-8") if isinstance(name, str) else b""
            if not raw or len(raw) > MAX_NAME:
                raise InvalidInput(f"collection name {name!r} must be 1 to {MAX_NAME} bytes of UTF-8")
            if len(hash_) != 32:
                raise InvalidInput(f"collection entry {name!r}: a hash is 32 bytes")
            items[name] = bytes(hash_)
        if len(items) > MAX_ENTRIES:
            raise InvalidInput(f"a collection holds at most {MAX_ENTRIES} entries")
        self._items = dict(sorted(items.items(), key=lambda kv: kv[0].encode()))

    def __getitem__(self, name: str) -> bytes:
        return self._items[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Collection({len(self)} entries)"

    def encode(self) -> bytes:
        parts = [MAGIC, _COUNT.pack(len(self._items))]
        for name, hash_ in self._items.items():
            raw = name.encode()
            parts += [_NAME_LEN.pack(len(raw)), raw, hash_]
        return b"".join(parts)

    @property
    def hash(self) -> bytes:
        return _core.blake3(self.encode())

    @classmethod
    def decode(cls, data: Buffer, expected_hash: Buffer) -> Collection:
        """Parse a collection blob after checking it hashes to ``expected_hash``."""
        view = memoryview(data).cast("B")
        if _core.blake3(view) != bytes(expected_hash):
            log.warning("collection blob does not match its hash %s", bytes(expected_hash).hex())
            raise ProofError("collection blob does not match its hash")
        try:
            return cls._parse(view)
        except DecodeError as e:
            log.warning("malformed collection %s: %s", bytes(expected_hash).hex(), e)
            raise

    @classmethod
    def _parse(cls, view: memoryview) -> Collection:
        if len(view) > MAX_COLLECTION_SIZE:
            raise DecodeError(f"collection of {len(view)} bytes is too large")
        if view[: len(MAGIC)] != MAGIC or len(view) < len(MAGIC) + 4:
            raise DecodeError("not a collection (bad magic)")
        (count,) = _COUNT.unpack_from(view, len(MAGIC))
        if count > MAX_ENTRIES:
            raise DecodeError(f"collection claims {count} entries")
        at = len(MAGIC) + 4
        entries: dict[str, bytes] = {}
        previous = b""
        for _ in range(count):
            if at + 2 > len(view):
                raise DecodeError("collection truncated")
            (n,) = _NAME_LEN.unpack_from(view, at)
            raw = bytes(view[at + 2 : at + 2 + n])
            hash_ = bytes(view[at + 2 + n : at + 2 + n + 32])
            if n == 0 or n > MAX_NAME or len(raw) != n or len(hash_) != 32:
                raise DecodeError("collection entry truncated or of a bad length")
            if raw <= previous:
                raise DecodeError("collection names are not strictly increasing")
            try:
                entries[raw.decode("utf-8")] = hash_
            except UnicodeDecodeError:
                raise DecodeError("collection name is not UTF-8") from None
            previous = raw
            at += 2 + n + 32
        if at != len(view):
            raise DecodeError(f"{len(view) - at} bytes after the last collection entry")
        return cls(entries)


__all__ = ["MAGIC", "Collection"]
