"""Signed values: one small mutable value, its sequence number and a signature.

The seed's "pubkey-value" (BEP 44 style): the owner of an ed25519 key signs
``(salt, seq, value)``; a replica keeps only the latest value and accepts a
new one only with a strictly higher ``seq``, a valid signature, and the
approval of an optional ``validate(value) -> bool`` hook. The optional salt
lets one key own several values; a value's id is a keyed hash of
``public_key ‖ salt``. Byte layouts are in docs/PROTOCOL.md §9.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from typing_extensions import Buffer

from hyphal import _core
from hyphal.errors import DecodeError, InvalidInput
from hyphal.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair, namespaced_message, require_signature

SIGNED_VALUE_VERSION = 1
MAX_VALUE_SIZE = 1000
MAX_SALT_SIZE = 64
MAX_SEQ = 2**63 - 1  # fits SQLite's signed 64-bit integers
SIGNED_VALUE_NAMESPACE: bytes = _core.derive_key("hyphal 2026-11 signed value signature", b"")
SIGNED_VALUE_ID_KEY: bytes = _core.derive_key("hyphal 2026-11 signed value id", b"")

_SEQ_AND_SIZE = struct.Struct("<QH")
_MIN_SIZE = 1 + PUBLIC_KEY_SIZE + 1 + _SEQ_AND_SIZE.size + SIGNATURE_SIZE


def value_id(public_key: Buffer, salt: bytes = b"") -> bytes:
    """``KH(SIGNED_VALUE_ID_KEY, public_key ‖ salt)``: where the value lives (DHT key, storage key)."""
    key = bytes(public_key)
    if len(key) != PUBLIC_KEY_SIZE or len(salt) > MAX_SALT_SIZE:
        raise InvalidInput("a 32-byte public key and a salt of at most 64 bytes")
    return _core.keyed_hash(SIGNED_VALUE_ID_KEY, key + salt)


def _signed_fields(public_key: bytes, salt: bytes, seq: int, value: bytes) -> bytes:
    return b"".join((public_key, bytes((len(salt),)), salt, _SEQ_AND_SIZE.pack(seq, len(value)), value))


@dataclass(frozen=True, slots=True)
class SignedValue:
    """One version of a signed value."""

    public_key: bytes
    seq: int
    value: bytes
    signature: bytes
    salt: bytes = b""

    def __post_init__(self) -> None:
        if not isinstance(self.public_key, bytes) or len(self.public_key) != PUBLIC_KEY_SIZE:
            raise InvalidInput("public key is 32 bytes")
        if isinstance(self.seq, bool) or not isinstance(self.seq, int) or not 0 <= self.seq <= MAX_SEQ:
            raise InvalidInput("seq must be an integer in [0, 2^63)")
        if not isinstance(self.value, bytes) or len(self.value) > MAX_VALUE_SIZE:
            raise InvalidInput(f"value must be at most {MAX_VALUE_SIZE} bytes")
        if not isinstance(self.signature, bytes) or len(self.signature) != SIGNATURE_SIZE:
            raise InvalidInput("signature is 64 bytes")
        if not isinstance(self.salt, bytes) or len(self.salt) > MAX_SALT_SIZE:
            raise InvalidInput(f"salt must be at most {MAX_SALT_SIZE} bytes")

    @classmethod
    def sign(cls, keypair: KeyPair, seq: int, value: bytes, salt: bytes = b"") -> SignedValue:
        unsigned = cls(keypair.public_key, seq, value, bytes(SIGNATURE_SIZE), salt)  # validates the fields
        return cls(keypair.public_key, seq, value, keypair.sign(unsigned.signable()), salt)

    @property
    def id(self) -> bytes:
        return value_id(self.public_key, self.salt)

    def signable(self) -> bytes:
        """``NAMESPACE ‖ public_key ‖ u8 len(salt) ‖ salt ‖ u64le seq ‖ u16le len(value) ‖ value``."""
        return namespaced_message(
            SIGNED_VALUE_NAMESPACE, _signed_fields(self.public_key, self.salt, self.seq, self.value)
        )

    def verify(self) -> None:
        """Raise :class:`~hyphal.errors.SignatureError` unless the owner signed this version."""
        require_signature(self.public_key, self.signable(), self.signature)

    def encode(self) -> bytes:
        return b"".join(
            (
                bytes((SIGNED_VALUE_VERSION,)),
                _signed_fields(self.public_key, self.salt, self.seq, self.value),
                self.signature,
            )
        )

    @classmethod
    def decode(cls, data: Buffer) -> SignedValue:
        """Parse an encoded signed value (structure only; :meth:`verify` checks the signature)."""
        raw = bytes(data)
        if len(raw) < _MIN_SIZE:
            raise DecodeError("signed value: shorter than its fixed fields")
        if raw[0] != SIGNED_VALUE_VERSION:
            raise DecodeError(f"signed value: unknown version {raw[0]}")
        public_key = raw[1 : 1 + PUBLIC_KEY_SIZE]
        salt_at = 2 + PUBLIC_KEY_SIZE
        salt_size = raw[salt_at - 1]
        seq_at = salt_at + salt_size
        if len(raw) < seq_at + _SEQ_AND_SIZE.size + SIGNATURE_SIZE:
            raise DecodeError("signed value: truncated")
        seq, value_size = _SEQ_AND_SIZE.unpack_from(raw, seq_at)
        value_at = seq_at + _SEQ_AND_SIZE.size
        if len(raw) != value_at + value_size + SIGNATURE_SIZE:
            raise DecodeError("signed value: length does not match its value size")
        try:
            return cls(
                public_key,
                seq,
                raw[value_at : value_at + value_size],
                raw[-SIGNATURE_SIZE:],
                raw[salt_at:seq_at],
            )
        except InvalidInput as e:
            raise DecodeError(f"signed value: {e}") from None

    @classmethod
    def decode_verified(cls, data: Buffer) -> SignedValue:
        signed = cls.decode(data)
        signed.verify()
        return signed


__all__ = [
    "MAX_SALT_SIZE",
    "MAX_SEQ",
    "MAX_VALUE_SIZE",
    "SIGNED_VALUE_ID_KEY",
    "SIGNED_VALUE_NAMESPACE",
    "SIGNED_VALUE_VERSION",
    "SignedValue",
    "value_id",
]
