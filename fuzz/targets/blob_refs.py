"""What names blobs: collections (blobs/collection.py) and private blob references (blobs/private.py).

Mode byte, then:

0. a collection blob (its hash taken from its bytes, so the parser is reached);
   it must encode back to its bytes;
1. a private blob reference (it must encode back to its bytes), and the
   plaintext size of a sealed blob of the size it names (``_core.blob.opened_size``).

Refusal: ``DecodeError`` (and ``ProofError`` for a collection that does not match its hash).
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import mode
from fuzz.harness import Target
from hyphal import _core
from hyphal.blobs.collection import Collection
from hyphal.blobs.private import PrivateBlob
from hyphal.errors import DecodeError, ProofError


def run(data: bytes) -> None:
    kind, data = mode(data, 2)
    if kind == 0:
        collection = Collection.decode(data, _core.blake3(data))
        assert collection.encode() == data, "a collection decoded from a non-canonical encoding"
    else:
        ref = PrivateBlob.from_bytes(data)
        assert ref.to_bytes() == data, "a private blob reference is not canonical"
        plain = _core.blob.opened_size(ref.size)
        assert _core.blob.sealed_size(plain) == ref.size, "opened_size is not sealed_size's inverse"


def seeds() -> Iterator[bytes]:
    yield b"\x00" + Collection().encode()
    yield b"\x00" + Collection({"a.txt": bytes(32), "dir/b": bytes(range(32)), "é": b"\xff" * 32}).encode()
    sealed = _core.blob.sealed_size(100_000)
    yield b"\x01" + PrivateBlob(bytes(range(32)), b"\x01" * 32, sealed, b"\x02" * 32).to_bytes()


TARGET = Target("blob_refs", run, (DecodeError, ProofError), seeds)
