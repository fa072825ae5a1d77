"""Authenticated encryption, sealed in the Rust core.

:func:`seal`/:func:`open` are XChaCha20-Poly1305, byte-compatible with
libsodium's ``crypto_aead_xchacha20poly1305_ietf``; their 24-byte nonces may
be random. :func:`seal_ietf`/:func:`open_ietf` are RFC 8439
ChaCha20-Poly1305 with 12-byte counter nonces, the cipher of Noise.
"""

from __future__ import annotations

from typing_extensions import Buffer

from hyphal import _core

KEY_SIZE = 32
NONCE_SIZE = 24
IETF_NONCE_SIZE = 12
TAG_SIZE = 16


def seal(key: Buffer, nonce: Buffer, plaintext: Buffer, associated_data: Buffer = b"") -> bytes:
    """Encrypt and authenticate: returns ``ciphertext ‖ tag``.

    Never seal two messages under one key with the same nonce.
    """
    return _core.xchacha20poly1305_encrypt(key, nonce, plaintext, associated_data)


def open(key: Buffer, nonce: Buffer, ciphertext: Buffer, associated_data: Buffer = b"") -> bytes:  # noqa: A001
    """Check and decrypt ``ciphertext ‖ tag``; raises :class:`~hyphal.errors.DecryptionError`."""
    return _core.xchacha20poly1305_decrypt(key, nonce, ciphertext, associated_data)


def seal_ietf(key: Buffer, nonce: Buffer, plaintext: Buffer, associated_data: Buffer = b"") -> bytes:
    """RFC 8439 ChaCha20-Poly1305 with a 12-byte nonce: returns ``ciphertext ‖ tag``."""
    return _core.chacha20poly1305_encrypt(key, nonce, plaintext, associated_data)


def open_ietf(key: Buffer, nonce: Buffer, ciphertext: Buffer, associated_data: Buffer = b"") -> bytes:
    """Check and decrypt RFC 8439 ``ciphertext ‖ tag``; raises :class:`~hyphal.errors.DecryptionError`."""
    return _core.chacha20poly1305_decrypt(key, nonce, ciphertext, associated_data)


__all__ = ["IETF_NONCE_SIZE", "KEY_SIZE", "NONCE_SIZE", "TAG_SIZE", "open", "open_ietf", "seal", "seal_ietf"]
