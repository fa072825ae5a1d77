"""Formats of the replicated secret store (docs/PROTOCOL.md §11.10).

A :class:`SecretRecord` is one version of one secret, signed by its owner,
so any holder can verify it and pass it on without the owner. Its payload is
sealed: a random data key encrypts the plaintext (XChaCha20-Poly1305, §7),
and the data key is wrapped for the owner and for each reader of the ACL
to their X25519 key (converted from their ed25519 key) with an ephemeral
X25519 key as a libsodium sealed box (:func:`wrap_key`; its ephemeral key
comes from randomness the caller supplies, so simulations stay
deterministic). Storage nodes see only ciphertext.

A :class:`SecretRequest` is what a client sends a node: an operation on one
secret id, a timestamp, a random nonce and the node it is meant for, signed
by the requester, so a node can refuse stale, replayed and misdirected
requests and requests from keys without the right.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets as _random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum

import nacl.bindings
import nacl.exceptions

from hyphal import _core, aead
from hyphal.errors import DecodeError, DecryptionError, InvalidInput
from hyphal.signing import (
    PUBLIC_KEY_SIZE,
    SIGNATURE_SIZE,
    KeyPair,
    namespaced_message,
    require_signature,
    x25519_private_key,
    x25519_public_key,
)

SECRET_ID_KEY: bytes = _core.derive_key("hyphal 2026-11 secret id", b"")
SECRET_RECORD_NAMESPACE: bytes = _core.derive_key("hyphal 2026-11 secret record", b"")
SECRET_REQUEST_NAMESPACE: bytes = _core.derive_key("hyphal 2026-11 secret request", b"")
RECORD_VERSION = 1
MAX_READERS = 8
MAX_PLAINTEXT = 4096
WRAPPED_KEY_SIZE = 32 + 32 + 16  # ephemeral X25519 key, boxed data key, tag (a sealed box)
_BOX_NONCE_SIZE = 24
NONCE_SIZE = 24
REQUEST_NONCE_SIZE = 16
DELETED = 1

_HEAD = struct.Struct("<32s32sQBB")  # owner, locator, version, flags, reader count
_REQUEST = struct.Struct("<B32sQ16s32s32sH")  # op, secret id, time ms, nonce, requester, node id, body size
_U16 = struct.Struct("<H")


def locator(url: str) -> bytes:
    """``H(url)``: records name the service by its hash, so holders never see the URL."""
    return _core.blake3(url.encode())


def secret_id(owner: bytes, url_or_locator: str | bytes) -> bytes:
    """``KH(SECRET_ID_KEY, owner ‖ H(url))``: where the secret lives in the node-id space."""
    loc = locator(url_or_locator) if isinstance(url_or_locator, str) else url_or_locator
    if len(owner) != PUBLIC_KEY_SIZE or len(loc) != 32:
        raise InvalidInput("a 32-byte owner key and a 32-byte locator")
    return _core.keyed_hash(SECRET_ID_KEY, owner + loc)


def wrap_key(data_key: bytes, recipient: bytes, random_bytes: Callable[[int], bytes]) -> bytes:
    """Seal ``data_key`` to an ed25519 ``recipient``: libsodium's ``crypto_box_seal``, 80 bytes.

    The format is exactly the sealed box (``E ‖ crypto_box(D, nonce = BLAKE2b-192(E ‖ r), r, e)``
    to the recipient's key converted to X25519), so libsodium's ``crypto_box_seal_open`` opens
    it. Only the ephemeral key differs: it comes from ``random_bytes`` (the OS in a node, a
    seeded generator in the simulator), through ``crypto_box_seed_keypair``.
    """
    recipient_x = x25519_public_key(recipient)
    ephemeral_public, ephemeral_secret = nacl.bindings.crypto_box_seed_keypair(random_bytes(32))
    nonce = hashlib.blake2b(ephemeral_public + recipient_x, digest_size=_BOX_NONCE_SIZE).digest()
    return ephemeral_public + nacl.bindings.crypto_box(data_key, nonce, recipient_x, ephemeral_secret)


def unwrap_key(wrapped: bytes, reader: KeyPair) -> bytes:
    """Open a :func:`wrap_key` (any sealed box) with libsodium; :class:`DecryptionError` otherwise."""
    public, private = x25519_public_key(reader.public_key), x25519_private_key(reader)
    try:
        data_key: bytes = nacl.bindings.crypto_box_seal_open(wrapped, public, private)
    except (nacl.exceptions.CryptoError, RuntimeError, ValueError) as e:
        raise DecryptionError("the wrapped key does not open with this key") from e
    return data_key


@dataclass(frozen=True, slots=True)
class SecretRecord:
    """One version of a secret: the owner's signed, sealed payload, or a tombstone (``deleted``)."""

    owner: bytes
    locator: bytes
    version: int
    readers: tuple[bytes, ...]
    wrapped_keys: tuple[bytes, ...]
    """The data key sealed to the owner, then to each reader, in that order."""
    nonce: bytes
    ciphertext: bytes
    signature: bytes
    deleted: bool = False
    encoded: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.owner) != PUBLIC_KEY_SIZE or len(self.locator) != 32:
            raise InvalidInput("owner and locator are 32 bytes")
        if not 0 < self.version < 2**63:
            raise InvalidInput("version must be in [1, 2^63)")
        if len(self.readers) > MAX_READERS or any(len(r) != PUBLIC_KEY_SIZE for r in self.readers):
            raise InvalidInput(f"at most {MAX_READERS} readers of 32 bytes")
        if len(set(self.readers)) != len(self.readers) or self.owner in self.readers:
            raise InvalidInput("readers are distinct and not the owner")
        wraps = 0 if self.deleted else 1 + len(self.readers)
        if len(self.wrapped_keys) != wraps or any(len(w) != WRAPPED_KEY_SIZE for w in self.wrapped_keys):
            raise InvalidInput("one wrapped key per reader and the owner (none for a tombstone)")
        if len(self.nonce) != NONCE_SIZE or len(self.signature) != SIGNATURE_SIZE:
            raise InvalidInput("nonce is 24 bytes and signature 64")
        if len(self.ciphertext) > MAX_PLAINTEXT + aead.TAG_SIZE or (self.deleted and self.ciphertext):
            raise InvalidInput("ciphertext too large (or present in a tombstone)")
        object.__setattr__(self, "encoded", bytes((RECORD_VERSION,)) + self._fields() + self.signature)

    def _fields(self) -> bytes:
        head = _HEAD.pack(
            self.owner, self.locator, self.version, DELETED if self.deleted else 0, len(self.readers)
        )
        return b"".join(
            (
                head,
                *self.readers,
                *self.wrapped_keys,
                self.nonce,
                _U16.pack(len(self.ciphertext)),
                self.ciphertext,
            )
        )

    @property
    def id(self) -> bytes:
        return secret_id(self.owner, self.locator)

    def signable(self) -> bytes:
        return namespaced_message(SECRET_RECORD_NAMESPACE, self._fields())

    def verify(self) -> None:
        require_signature(self.owner, self.signable(), self.signature)

    def may_read(self, public_key: bytes) -> bool:
        return public_key == self.owner or public_key in self.readers

    @classmethod
    def seal(
        cls,
        owner: KeyPair,
        url: str,
        version: int,
        plaintext: bytes,
        readers: tuple[bytes, ...] = (),
        random_bytes: Callable[[int], bytes] | None = None,
    ) -> SecretRecord:
        """Encrypt ``plaintext`` for the owner and ``readers`` and sign the result.

        ``random_bytes`` makes the data key and nonce (a CSPRNG; the simulator passes its seeded one).
        """
        # Looked up per call, not bound as a default: the simulator seeds ``secrets.token_bytes``.
        random_bytes = random_bytes or _random.token_bytes
        if len(plaintext) > MAX_PLAINTEXT:
            raise InvalidInput(f"a secret is at most {MAX_PLAINTEXT} bytes")
        loc = locator(url)
        data_key = random_bytes(32)
        nonce = random_bytes(NONCE_SIZE)
        ad = secret_id(owner.public_key, loc) + struct.pack("<Q", version)
        wrapped = tuple(wrap_key(data_key, k, random_bytes) for k in (owner.public_key, *readers))
        ciphertext = aead.seal(data_key, nonce, plaintext, ad)
        return cls._signed(owner, loc, version, readers, wrapped, nonce, ciphertext, False)

    @classmethod
    def tombstone(cls, owner: KeyPair, url: str, version: int) -> SecretRecord:
        """A signed "deleted at ``version``": it replaces every older version everywhere."""
        return cls._signed(owner, locator(url), version, (), (), bytes(NONCE_SIZE), b"", True)

    @classmethod
    def _signed(
        cls,
        owner: KeyPair,
        loc: bytes,
        version: int,
        readers: tuple[bytes, ...],
        wrapped: tuple[bytes, ...],
        nonce: bytes,
        ciphertext: bytes,
        deleted: bool,
    ) -> SecretRecord:
        args = (owner.public_key, loc, version, readers, wrapped, nonce, ciphertext)
        unsigned = cls(*args, bytes(SIGNATURE_SIZE), deleted)
        return cls(*args, owner.sign(unsigned.signable()), deleted)

    def open(self, reader: KeyPair) -> bytes:
        """Decrypt with the owner's or a reader's keypair; :class:`DecryptionError` otherwise."""
        if self.deleted:
            raise DecryptionError("the secret was deleted")
        keys = (self.owner, *self.readers)
        if reader.public_key not in keys:
            raise DecryptionError("this key may not read the secret")
        data_key = unwrap_key(self.wrapped_keys[keys.index(reader.public_key)], reader)
        ad = self.id + struct.pack("<Q", self.version)
        return aead.open(data_key, self.nonce, self.ciphertext, ad)

    @staticmethod
    def decode(data: bytes) -> SecretRecord:
        """Parse and verify (DecodeError for bad structure, SignatureError for a forgery)."""
        if len(data) < 1 + _HEAD.size + NONCE_SIZE + 2 + SIGNATURE_SIZE or data[0] != RECORD_VERSION:
            raise DecodeError("secret record: truncated or unknown version")
        owner, loc, version, flags, count = _HEAD.unpack_from(data, 1)
        if flags not in (0, DELETED) or count > MAX_READERS:
            raise DecodeError("secret record: bad flags or reader count")
        deleted = flags == DELETED
        at = 1 + _HEAD.size
        readers = tuple(data[at + 32 * i : at + 32 * i + 32] for i in range(count))
        at += 32 * count
        wraps = 0 if deleted else count + 1
        wrapped = tuple(
            data[at + WRAPPED_KEY_SIZE * i : at + WRAPPED_KEY_SIZE * (i + 1)] for i in range(wraps)
        )
        at += WRAPPED_KEY_SIZE * wraps
        nonce = data[at : at + NONCE_SIZE]
        at += NONCE_SIZE
        if len(data) < at + 2:
            raise DecodeError("secret record: truncated")
        (size,) = _U16.unpack_from(data, at)
        at += 2
        if len(data) != at + size + SIGNATURE_SIZE:
            raise DecodeError("secret record: length does not match")
        try:
            record = SecretRecord(
                owner, loc, version, readers, wrapped, nonce, data[at : at + size], data[at + size :], deleted
            )
        except InvalidInput as e:
            raise DecodeError(f"secret record: {e}") from None
        record.verify()
        return record


class Op(IntEnum):
    PUT = 1
    GET = 2
    DELETE = 3


@dataclass(frozen=True, slots=True)
class SecretRequest:
    """A client's signed request to one node about one secret."""

    op: int
    secret_id: bytes
    timestamp_ms: int
    nonce: bytes
    requester: bytes
    node_id: bytes
    """The node the request is for: a request captured on its way to one node is refused by the others."""
    body: bytes
    signature: bytes

    def _fields(self) -> bytes:
        return (
            _REQUEST.pack(
                self.op,
                self.secret_id,
                self.timestamp_ms,
                self.nonce,
                self.requester,
                self.node_id,
                len(self.body),
            )
            + self.body
        )

    def encode(self) -> bytes:
        return self._fields() + self.signature

    @classmethod
    def sign(
        cls,
        keypair: KeyPair,
        op: int,
        secret: bytes,
        node_id: bytes,
        now: float,
        body: bytes = b"",
        random_bytes: Callable[[int], bytes] | None = None,
    ) -> SecretRequest:
        random_bytes = random_bytes or _random.token_bytes
        unsigned = cls(
            op,
            secret,
            int(now * 1000),
            random_bytes(REQUEST_NONCE_SIZE),
            keypair.public_key,
            node_id,
            body,
            bytes(SIGNATURE_SIZE),
        )
        message = namespaced_message(SECRET_REQUEST_NAMESPACE, unsigned._fields())
        return dataclasses.replace(unsigned, signature=keypair.sign(message))

    def verify(self) -> None:
        require_signature(
            self.requester, namespaced_message(SECRET_REQUEST_NAMESPACE, self._fields()), self.signature
        )

    @staticmethod
    def decode(data: bytes) -> SecretRequest:
        """Parse and verify; DecodeError or SignatureError."""
        if len(data) < _REQUEST.size + SIGNATURE_SIZE:
            raise DecodeError("secret request: truncated")
        op, sid, ts, nonce, requester, node_id, size = _REQUEST.unpack_from(data)
        if op not in Op._value2member_map_:
            raise DecodeError(f"secret request: unknown op {op}")
        if len(data) != _REQUEST.size + size + SIGNATURE_SIZE:
            raise DecodeError("secret request: length does not match")
        body = data[_REQUEST.size : _REQUEST.size + size]
        request = SecretRequest(op, sid, ts, nonce, requester, node_id, body, data[-SIGNATURE_SIZE:])
        request.verify()
        return request


__all__ = [
    "MAX_PLAINTEXT",
    "MAX_READERS",
    "SECRET_ID_KEY",
    "Op",
    "SecretRecord",
    "SecretRequest",
    "locator",
    "secret_id",
]
