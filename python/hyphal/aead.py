"""XChaCha20-Poly1305, byte-compatible with libsodium's ``crypto_aead_xchacha20poly1305_ietf``."""

from __future__ import annotations

from typing_extensions import Buffer

from hyphal import _core

KEY_SIZE = 32
NONCE_SIZE = 24
TAG_SIZE = 16


def seal(key: Buffer, nonce: Buffer, plaintext: Buffer, associated_data: Buffer = b"") -> bytes:
    """Encrypt and authenticate: returns ``ciphertext ‖ tag``.

    Never seal two messages under one key with the same nonce.
    """
    return _core.xchacha20poly1305_encrypt(key, nonce, plaintext, associated_data)


def open(key: Buffer, nonce: Buffer, ciphertext: Buffer, associated_data: Buffer = b"") -> bytes:  # noqa: A001
    """Check and decrypt ``ciphertext ‖ tag``; raises :class:`~hyphal.errors.DecryptionError`."""
    return _core.xchacha20poly1305_decrypt(key, nonce, ciphertext, associated_data)


__all__ = ["KEY_SIZE", "NONCE_SIZE", "TAG_SIZE", "open", "seal"]
