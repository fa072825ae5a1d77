"""Plain ed25519 signatures (interoperable with libsodium/pynacl), verified strictly."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

import nacl.bindings
import nacl.exceptions
from typing_extensions import Buffer

from hyphal import _core
from hyphal.errors import InvalidInput, SignatureError

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
SEED_SIZE = 32


class KeyPair:
    """An ed25519 keypair made from a 32-byte secret seed."""

    __slots__ = ("_key",)

    def __init__(self, seed: Buffer) -> None:
        self._key = _core.SigningKey(seed)

    @classmethod
    def generate(cls) -> KeyPair:
        """A new keypair from the operating system's CSPRNG."""
        return cls(secrets.token_bytes(SEED_SIZE))

    @classmethod
    def from_seed(cls, seed: Buffer) -> KeyPair:
        return cls(seed)

    @property
    def public_key(self) -> bytes:
        return self._key.public_key

    @property
    def seed(self) -> bytes:
        """The secret seed. Keep it secret; it never appears in ``repr``."""
        return self._key.seed

    def sign(self, message: Buffer) -> bytes:
        return self._key.sign(message)

    def __repr__(self) -> str:
        return f"KeyPair(public_key={self.public_key.hex()})"


def verify(public_key: Buffer, message: Buffer, signature: Buffer) -> bool:
    """True when ``signature`` is a valid strict ed25519 signature of ``message``."""
    return _core.ed25519_verify(public_key, message, signature)


def verify_batch(
    public_keys: Sequence[Buffer], messages: Sequence[Buffer], signatures: Sequence[Buffer]
) -> bool:
    """True when every signature verifies (one batched check, same rules as :func:`verify`)."""
    return _core.ed25519_verify_batch(public_keys, messages, signatures)


def namespaced_message(namespace: bytes, *fields: bytes) -> bytes:
    """``namespace ‖ fields…``: every hyphal signature starts with a 32-byte domain key."""
    if len(namespace) != 32:
        raise InvalidInput("a signature namespace is a 32-byte derived key")
    return b"".join((namespace, *fields))


def require_signature(public_key: Buffer, message: Buffer, signature: Buffer) -> None:
    """Raise :class:`~hyphal.errors.SignatureError` unless ``signature`` verifies (strict ed25519)."""
    if len(memoryview(signature)) != SIGNATURE_SIZE or not _core.ed25519_verify(
        public_key, message, signature
    ):
        raise SignatureError("ed25519 signature does not verify")


require_valid = require_signature
"""The older name of :func:`require_signature`."""


def x25519_private_key(keypair: KeyPair) -> bytes:
    """The X25519 secret key of an ed25519 identity (libsodium's conversion), for key agreement."""
    converted: bytes = nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(keypair.seed + keypair.public_key)
    return converted


def x25519_public_key(public_key: bytes) -> bytes:
    """The X25519 public key an ed25519 public key converts to; :class:`InvalidInput` if it is not
    a valid curve point."""
    try:
        converted: bytes = nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key)
    except (nacl.exceptions.CryptoError, TypeError) as exc:
        raise InvalidInput("an ed25519 public key that is not a valid curve point") from exc
    return converted


__all__ = [
    "PUBLIC_KEY_SIZE",
    "SEED_SIZE",
    "SIGNATURE_SIZE",
    "KeyPair",
    "namespaced_message",
    "require_signature",
    "require_valid",
    "verify",
    "verify_batch",
    "x25519_private_key",
    "x25519_public_key",
]
