"""Signed feed heads, and the signing helpers every signed structure of feeds shares.

A head is ``(length, fork, tree hash)`` plus signatures from at least
``quorum`` distinct signers of the feed's manifest. Each signature is over the
112-byte signable of PROTOCOL.md §3 and travels with its signer's index. The
wire encoding is in docs/PROTOCOL.md §9; :meth:`SignedHead.decode` rejects
everything else with :class:`DecodeError`, and :meth:`SignedHead.verify`
rejects bad signatures with :class:`SignatureError`.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from typing_extensions import Buffer

from hyphal import _core
from hyphal.errors import DecodeError, InvalidInput, SignatureError
from hyphal.feed.manifest import Manifest
from hyphal.merkle import MAX_LENGTH
from hyphal.signing import SIGNATURE_SIZE, KeyPair, verify, verify_batch

HEAD_VERSION = 1
MAX_FORK = 2**64 - 1

_HEAD = struct.Struct("<BQQ32sB")  # version, length, fork, tree hash, signature count
_SIGNATURE_ENTRY = 1 + SIGNATURE_SIZE


@dataclass(frozen=True, slots=True)
class HeadSignature:
    """One signer's signature: ``signer`` is its index in the manifest."""

    signer: int
    signature: bytes

    def __post_init__(self) -> None:
        if isinstance(self.signer, bool) or not isinstance(self.signer, int) or not 0 <= self.signer < 256:
            raise InvalidInput("a signer index is an integer in [0, 256)")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise InvalidInput("a signature is 64 bytes")


Signer = Callable[[bytes], Sequence[HeadSignature]]
"""Signs a message for a manifest: returns signatures of at least ``quorum`` distinct signers."""


def keypair_signer(manifest: Manifest, keypairs: Sequence[KeyPair]) -> Signer:
    """A :data:`Signer` from local keypairs; it signs with the first ``quorum`` that are signers.

    Raises :class:`InvalidInput` when fewer than ``quorum`` of them are in the manifest.
    """
    signing: dict[int, KeyPair] = {}
    for keypair in keypairs:
        index = manifest.signer_index(keypair.public_key)
        if index is not None:
            signing.setdefault(index, keypair)
    if len(signing) < manifest.quorum:
        raise InvalidInput(f"{len(signing)} of the keypairs are signers; the quorum is {manifest.quorum}")
    chosen = sorted(signing.items())[: manifest.quorum]

    def sign(message: bytes) -> list[HeadSignature]:
        return [HeadSignature(index, keypair.sign(message)) for index, keypair in chosen]

    return sign


def can_sign(manifest: Manifest, keypairs: Sequence[KeyPair]) -> bool:
    """True when ``keypairs`` hold at least ``quorum`` distinct signers of ``manifest``."""
    found = {manifest.signer_index(k.public_key) for k in keypairs} - {None}
    return len(found) >= manifest.quorum


def verify_quorum(manifest: Manifest, message: bytes, signatures: Sequence[HeadSignature]) -> None:
    """Raise :class:`SignatureError` unless ``signatures`` are valid, by distinct signers, and a quorum.

    Every signature carried must verify, not just ``quorum`` of them: a head
    never carries a bad signature.
    """
    indexes = [s.signer for s in signatures]
    if len(set(indexes)) != len(indexes):
        raise SignatureError("a signer signed twice")
    if len(indexes) < manifest.quorum:
        raise SignatureError(f"{len(indexes)} signature(s); the quorum is {manifest.quorum}")
    if any(i >= len(manifest.signers) for i in indexes):
        raise SignatureError("signer index is not in the manifest")
    keys = [manifest.signers[i] for i in indexes]
    sigs = [s.signature for s in signatures]
    ok = (
        verify(keys[0], message, sigs[0])
        if len(sigs) == 1
        else verify_batch(keys, [message] * len(sigs), sigs)
    )
    if not ok:
        raise SignatureError("head signature does not verify")


# -- heads ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedHead:
    """A signed feed head: the tree of ``length`` blocks in fork ``fork`` has ``tree_hash``.

    ``signatures`` are sorted by signer index (the canonical order).
    """

    length: int
    fork: int
    tree_hash: bytes
    signatures: tuple[HeadSignature, ...]

    def __post_init__(self) -> None:
        if (
            isinstance(self.length, bool)
            or not isinstance(self.length, int)
            or not 0 <= self.length <= MAX_LENGTH
        ):
            raise InvalidInput(f"head length must be in [0, {MAX_LENGTH}]")
        if isinstance(self.fork, bool) or not isinstance(self.fork, int) or not 0 <= self.fork <= MAX_FORK:
            raise InvalidInput("head fork must be in [0, 2^64)")
        if not isinstance(self.tree_hash, bytes) or len(self.tree_hash) != 32:
            raise InvalidInput("tree hash is 32 bytes")
        if not isinstance(self.signatures, tuple) or not 1 <= len(self.signatures) <= 255:
            raise InvalidInput("a head carries 1 to 255 signatures")
        indexes = [s.signer for s in self.signatures]
        if any(a >= b for a, b in itertools.pairwise(indexes)):
            raise InvalidInput("head signatures must be sorted by strictly increasing signer index")

    @classmethod
    def sign(cls, feed_key: bytes, tree_hash: bytes, length: int, fork: int, signer: Signer) -> SignedHead:
        message = _core.head_signable(feed_key, tree_hash, length, fork)
        signatures = tuple(sorted(signer(message), key=lambda s: s.signer))
        return cls(length, fork, tree_hash, signatures)

    def signable(self, feed_key: Buffer) -> bytes:
        """The 112-byte message every signer signed (PROTOCOL.md §3)."""
        return _core.head_signable(feed_key, self.tree_hash, self.length, self.fork)

    def verify(self, manifest: Manifest) -> None:
        """Raise :class:`SignatureError` unless a quorum of ``manifest``'s signers signed this head."""
        verify_quorum(manifest, self.signable(manifest.key), self.signatures)

    def encode(self) -> bytes:
        parts = [_HEAD.pack(HEAD_VERSION, self.length, self.fork, self.tree_hash, len(self.signatures))]
        for s in self.signatures:
            parts += (bytes((s.signer,)), s.signature)
        return b"".join(parts)

    @classmethod
    def decode(cls, data: Buffer) -> SignedHead:
        """Parse an encoded head (structure only; :meth:`verify` checks the signatures)."""
        raw = bytes(data)
        if len(raw) < _HEAD.size:
            raise DecodeError("head: shorter than its header")
        version, length, fork, tree_hash, count = _HEAD.unpack_from(raw)
        if version != HEAD_VERSION:
            raise DecodeError(f"head: unknown version {version}")
        if len(raw) != _HEAD.size + count * _SIGNATURE_ENTRY:
            raise DecodeError("head: length does not match its signature count")
        signatures = tuple(
            HeadSignature(raw[at], raw[at + 1 : at + _SIGNATURE_ENTRY])
            for at in range(_HEAD.size, len(raw), _SIGNATURE_ENTRY)
        )
        try:
            return cls(length, fork, tree_hash, signatures)
        except InvalidInput as e:
            raise DecodeError(f"head: {e}") from None

    @classmethod
    def decode_verified(cls, data: Buffer, manifest: Manifest) -> SignedHead:
        """:meth:`decode` then :meth:`verify`: DecodeError or SignatureError on bad input."""
        head = cls.decode(data)
        head.verify(manifest)
        return head


__all__ = [
    "HEAD_VERSION",
    "HeadSignature",
    "SignedHead",
    "Signer",
    "can_sign",
    "keypair_signer",
    "verify_quorum",
]
