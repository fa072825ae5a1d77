"""Feed manifests: who signs a feed, how many must sign, and the keys derived from it.

A feed key is the keyed hash of the manifest's canonical encoding, so a
single-key feed is just a 1-of-1 manifest and an M-of-N feed works the same
way. Peers meet on the *discovery key*, a keyed hash of the feed key: the
wire and the DHT never carry the feed key itself. Byte layouts are in
docs/PROTOCOL.md §9.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing_extensions import Buffer

from hyphal import _core
from hyphal.errors import DecodeError, InvalidInput
from hyphal.signing import PUBLIC_KEY_SIZE

MANIFEST_VERSION = 1
MAX_SIGNERS = 255  # a signer index travels as one byte
MAX_LABEL_SIZE = 64

# Domain keys (PROTOCOL.md §1 style): DK(context) with empty key material.
MANIFEST_KEY: bytes = _core.derive_key("hyphal 2026-11 feed manifest", b"")
DISCOVERY_KEY: bytes = _core.derive_key("hyphal 2026-11 feed discovery", b"")

_HEADER_SIZE = 3  # version, quorum, signer count


@dataclass(frozen=True, slots=True)
class Manifest:
    """The signers of a feed (ed25519 public keys, in index order) and the quorum M of N.

    ``label`` (0-64 bytes) lets one set of signers own several feeds: each
    label gives a different manifest, hence a different feed key.
    """

    signers: tuple[bytes, ...]
    quorum: int = 1
    label: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.signers, tuple) or not 1 <= len(self.signers) <= MAX_SIGNERS:
            raise InvalidInput(f"a manifest needs a tuple of 1 to {MAX_SIGNERS} signers")
        for key in self.signers:
            if not isinstance(key, bytes) or len(key) != PUBLIC_KEY_SIZE:
                raise InvalidInput("every signer is a 32-byte ed25519 public key (bytes)")
        if len(set(self.signers)) != len(self.signers):
            raise InvalidInput("manifest signers must be distinct")
        if isinstance(self.quorum, bool) or not isinstance(self.quorum, int):
            raise InvalidInput("quorum must be an integer")
        if not 1 <= self.quorum <= len(self.signers):
            raise InvalidInput(f"quorum {self.quorum} is not within 1..{len(self.signers)}")
        if not isinstance(self.label, bytes) or len(self.label) > MAX_LABEL_SIZE:
            raise InvalidInput(f"label must be at most {MAX_LABEL_SIZE} bytes")

    @classmethod
    def single(cls, public_key: Buffer, label: bytes = b"") -> Manifest:
        """A 1-of-1 manifest: a single-writer feed."""
        return cls((bytes(public_key),), 1, label)

    @property
    def key(self) -> bytes:
        """The feed key: ``KH(MANIFEST_KEY, encode())``."""
        return _core.keyed_hash(MANIFEST_KEY, self.encode())

    @property
    def discovery_key(self) -> bytes:
        return discovery_key(self.key)

    def signer_index(self, public_key: Buffer) -> int | None:
        try:
            return self.signers.index(bytes(public_key))
        except ValueError:
            return None

    def encode(self) -> bytes:
        return b"".join(
            (
                bytes((MANIFEST_VERSION, self.quorum, len(self.signers))),
                *self.signers,
                bytes((len(self.label),)),
                self.label,
            )
        )

    @classmethod
    def decode(cls, data: Buffer) -> Manifest:
        """Parse a canonical manifest; anything else raises :class:`DecodeError`."""
        raw = bytes(data)
        if len(raw) < _HEADER_SIZE + 1:
            raise DecodeError("manifest: shorter than its header")
        version, quorum, count = raw[0], raw[1], raw[2]
        if version != MANIFEST_VERSION:
            raise DecodeError(f"manifest: unknown version {version}")
        label_at = _HEADER_SIZE + count * PUBLIC_KEY_SIZE
        if len(raw) < label_at + 1:
            raise DecodeError("manifest: truncated signer list")
        label_size = raw[label_at]
        if len(raw) != label_at + 1 + label_size:
            raise DecodeError("manifest: length does not match its signer count and label")
        signers = tuple(
            raw[at : at + PUBLIC_KEY_SIZE] for at in range(_HEADER_SIZE, label_at, PUBLIC_KEY_SIZE)
        )
        try:
            return cls(signers, quorum, raw[label_at + 1 :])
        except InvalidInput as e:
            raise DecodeError(f"manifest: {e}") from None


def discovery_key(feed_key: Buffer) -> bytes:
    """``KH(DISCOVERY_KEY, feed_key)``: the only feed identifier the wire and DHT carry."""
    if len(memoryview(feed_key)) != 32:
        raise InvalidInput("a feed key is 32 bytes")
    return _core.keyed_hash(DISCOVERY_KEY, feed_key)


__all__ = [
    "DISCOVERY_KEY",
    "MANIFEST_KEY",
    "MANIFEST_VERSION",
    "MAX_LABEL_SIZE",
    "MAX_SIGNERS",
    "Manifest",
    "discovery_key",
]
