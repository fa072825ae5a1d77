"""``hyphal._core.aead``: XChaCha20-Poly1305 and RFC 8439 ChaCha20-Poly1305, whole or in parts."""

from collections.abc import Sequence

from typing_extensions import Buffer

def xchacha20poly1305_encrypt(
    key: Buffer, nonce: Buffer, plaintext: Buffer, associated_data: Buffer = b""
) -> bytes: ...
def xchacha20poly1305_decrypt(
    key: Buffer, nonce: Buffer, ciphertext: Buffer, associated_data: Buffer = b""
) -> bytes: ...
def chacha20poly1305_encrypt(
    key: Buffer, nonce: Buffer, plaintext: Buffer, associated_data: Buffer = b""
) -> bytes:
    """RFC 8439 ChaCha20-Poly1305 (12-byte nonce), the Noise cipher: ``ciphertext ‖ tag``."""

def chacha20poly1305_decrypt(
    key: Buffer, nonce: Buffer, ciphertext: Buffer, associated_data: Buffer = b""
) -> bytes: ...
def chacha20poly1305_encrypt_parts(
    key: Buffer,
    nonce: Buffer,
    parts: Sequence[Buffer],
    associated_data: Buffer = b"",
    prefix: Buffer = b"",
) -> bytes:
    """``prefix ‖ chacha20poly1305_encrypt(concatenation of parts)``: sealed without joining first.

    The prefix is neither encrypted nor authenticated: it is room for the caller's framing.
    """

def chacha20poly1305_decrypt_parts(
    key: Buffer, nonce: Buffer, parts: Sequence[Buffer], associated_data: Buffer = b""
) -> bytes:
    """``chacha20poly1305_decrypt`` of the concatenation of ``parts``, without joining them first."""

__all__ = [
    "chacha20poly1305_decrypt",
    "chacha20poly1305_decrypt_parts",
    "chacha20poly1305_encrypt",
    "chacha20poly1305_encrypt_parts",
    "xchacha20poly1305_decrypt",
    "xchacha20poly1305_encrypt",
]
