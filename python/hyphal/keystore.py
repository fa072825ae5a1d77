"""A node's identity on disk: its ed25519 seed, optionally sealed under a passphrase.

The file (layout in docs/PROTOCOL.md §13) always carries the public key in
the clear, so ``hyphal id`` works without the passphrase. The seed is either
stored as is, readable only by the owner (mode 0600, like an ssh key), or
sealed with XChaCha20-Poly1305 under a key that Argon2id derives from the
passphrase; the header is the associated data, so no field can be altered.
Writes are atomic (temporary file, fsync, rename), so a crash leaves either
the old identity or the new one.
"""

from __future__ import annotations

import secrets
import struct
from dataclasses import dataclass
from pathlib import Path

import nacl.pwhash

from hyphal import aead
from hyphal.errors import DecodeError, DecryptionError, InvalidInput, WrongPassphrase
from hyphal.files import write_atomically
from hyphal.signing import SEED_SIZE, KeyPair

MAGIC = b"HYID"
VERSION = 1
PLAIN = 0
SEALED = 1

_HEADER = struct.Struct("<4sBB32s")  # magic, version, kind, public key
_KDF = struct.Struct("<QQ16s24s")  # opslimit, memlimit, salt, nonce
_SEALED_SEED = SEED_SIZE + aead.TAG_SIZE
PLAIN_SIZE = _HEADER.size + SEED_SIZE
SEALED_SIZE = _HEADER.size + _KDF.size + _SEALED_SEED

# A file may not make us spend more than libsodium's "sensitive" cost on a passphrase.
_MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
_MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE


@dataclass(frozen=True, slots=True)
class KdfCost:
    """Argon2id work factors; the defaults are libsodium's "moderate" (256 MiB, ~0.5 s)."""

    opslimit: int = nacl.pwhash.argon2id.OPSLIMIT_MODERATE
    memlimit: int = nacl.pwhash.argon2id.MEMLIMIT_MODERATE

    def __post_init__(self) -> None:
        low_ops, low_mem = nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN
        if not (low_ops <= self.opslimit <= _MAX_OPSLIMIT and low_mem <= self.memlimit <= _MAX_MEMLIMIT):
            raise InvalidInput(
                f"Argon2id cost out of range: opslimit {self.opslimit}, memlimit {self.memlimit}"
            )


def _derive(passphrase: str, salt: bytes, cost: KdfCost) -> bytes:
    if not passphrase:
        raise InvalidInput("an empty passphrase protects nothing")
    key: bytes = nacl.pwhash.argon2id.kdf(
        aead.KEY_SIZE, passphrase.encode("utf-8"), salt, opslimit=cost.opslimit, memlimit=cost.memlimit
    )
    return key


def encode_identity(keypair: KeyPair, passphrase: str | None = None, cost: KdfCost | None = None) -> bytes:
    """The identity file's bytes: the seed sealed under ``passphrase``, or plain without one."""
    if passphrase is None:
        return _HEADER.pack(MAGIC, VERSION, PLAIN, keypair.public_key) + keypair.seed
    cost = cost or KdfCost()
    salt = secrets.token_bytes(nacl.pwhash.argon2id.SALTBYTES)
    nonce = secrets.token_bytes(aead.NONCE_SIZE)
    header = _HEADER.pack(MAGIC, VERSION, SEALED, keypair.public_key) + _KDF.pack(
        cost.opslimit, cost.memlimit, salt, nonce
    )
    return header + aead.seal(_derive(passphrase, salt, cost), nonce, keypair.seed, header)


def _parse_header(data: bytes) -> tuple[int, bytes]:
    if len(data) < _HEADER.size:
        raise DecodeError("identity file is truncated")
    magic, version, kind, public_key = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise DecodeError("not a hyphal identity file")
    if version != VERSION:
        raise DecodeError(f"identity file version {version} is not supported (this hyphal reads {VERSION})")
    expected = {PLAIN: PLAIN_SIZE, SEALED: SEALED_SIZE}.get(kind)
    if expected is None:
        raise DecodeError(f"unknown identity file kind {kind}")
    if len(data) != expected:
        raise DecodeError(f"identity file is {len(data)} bytes, not {expected}")
    return kind, public_key


def identity_public_key(data: bytes) -> bytes:
    """The public key an identity file holds, read without any passphrase."""
    return _parse_header(data)[1]


def identity_is_sealed(data: bytes) -> bool:
    return _parse_header(data)[0] == SEALED


def decode_identity(data: bytes, passphrase: str | None = None) -> KeyPair:
    """The keypair in an identity file; a sealed one needs its passphrase.

    Raises :class:`DecodeError` for a malformed file, :class:`InvalidInput`
    for a sealed file without a passphrase, :class:`WrongPassphrase` when the
    passphrase does not open it, and :class:`DecryptionError` when the seed
    does not belong to the public key the file names.
    """
    kind, public_key = _parse_header(data)
    if kind == PLAIN:
        seed = data[_HEADER.size :]
    else:
        if passphrase is None:
            raise InvalidInput("this identity is protected by a passphrase; give it to unlock the node")
        header_end = _HEADER.size + _KDF.size
        opslimit, memlimit, salt, nonce = _KDF.unpack_from(data, _HEADER.size)
        try:
            cost = KdfCost(opslimit, memlimit)
        except InvalidInput as exc:
            raise DecodeError(f"identity file asks for an unreasonable Argon2id cost: {exc}") from None
        try:
            seed = aead.open(_derive(passphrase, salt, cost), nonce, data[header_end:], data[:header_end])
        except DecryptionError:
            raise WrongPassphrase("wrong passphrase for this identity (or the file was altered)") from None
    keypair = KeyPair(seed)
    if keypair.public_key != public_key:
        raise DecryptionError("the identity file's seed does not match its public key")
    return keypair


def save_identity(
    path: Path, keypair: KeyPair, passphrase: str | None = None, cost: KdfCost | None = None
) -> None:
    """Write ``keypair`` to ``path`` (mode 0600), replacing any file there atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, encode_identity(keypair, passphrase, cost))


def load_identity(path: Path, passphrase: str | None = None) -> KeyPair:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no identity at {path}; run `hyphal init` first") from None
    return decode_identity(data, passphrase)


def load_or_create_identity(
    path: Path, passphrase: str | None = None, cost: KdfCost | None = None
) -> tuple[KeyPair, bool]:
    """The identity at ``path``, made and saved first if there is none; ``(keypair, created)``."""
    if path.exists():
        return load_identity(path, passphrase), False
    keypair = KeyPair.generate()
    save_identity(path, keypair, passphrase, cost)
    return keypair, True


__all__ = [
    "PLAIN_SIZE",
    "SEALED_SIZE",
    "KdfCost",
    "decode_identity",
    "encode_identity",
    "identity_is_sealed",
    "identity_public_key",
    "load_identity",
    "load_or_create_identity",
    "save_identity",
]
