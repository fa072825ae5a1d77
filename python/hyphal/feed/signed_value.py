"""Signed value feeds: one small mutable value, its sequence number and a signature.

The seed's "pubkey-value" (BEP 44 style): the owner of an ed25519 key signs
``(salt, seq, value)``; a replica keeps only the latest value and accepts a
new one only with a strictly higher ``seq``, a valid signature, and the
approval of an optional ``validate(value) -> bool`` hook. The optional salt
lets one key own several values; a value's id is a keyed hash of
``public_key ‖ salt``. Byte layouts are in docs/PROTOCOL.md §9.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass

import anyio
from typing_extensions import Buffer

from hyphal import _core
from hyphal.errors import DecodeError, InvalidInput, SeqConflict, VerificationError
from hyphal.feed.head import namespaced_message, require_signature
from hyphal.notifier import Notifier
from hyphal.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair
from hyphal.storage.base import Storage

SIGNED_VALUE_VERSION = 1
MAX_VALUE_SIZE = 1000
MAX_SALT_SIZE = 64
MAX_SEQ = 2**63 - 1  # fits SQLite's signed 64-bit integers
SIGNED_VALUE_NAMESPACE: bytes = _core.derive_key("hyphal 2026-11 signed value signature", b"")
SIGNED_VALUE_ID_KEY: bytes = _core.derive_key("hyphal 2026-11 signed value id", b"")

_SEQ_AND_SIZE = struct.Struct("<QH")
_MIN_SIZE = 1 + PUBLIC_KEY_SIZE + 1 + _SEQ_AND_SIZE.size + SIGNATURE_SIZE

Validator = Callable[[bytes], bool]


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


class SignedValueFeed:
    """The replica of one signed value (``public_key``, ``salt``), persisted in ``storage``.

    Writable with the owner's ``keypair``. ``validate`` vets every value,
    local or remote, before it is accepted.
    """

    def __init__(
        self,
        storage: Storage,
        public_key: Buffer,
        *,
        salt: bytes = b"",
        keypair: KeyPair | None = None,
        validate: Validator | None = None,
    ) -> None:
        self._public_key = bytes(public_key)
        self._salt = salt
        self._id = value_id(self._public_key, salt)
        if keypair is not None and keypair.public_key != self._public_key:
            raise InvalidInput("keypair does not own this signed value")
        self._storage = storage
        self._keypair = keypair
        self._validate = validate
        self._changes: Notifier[SignedValue] = Notifier()
        self._current: SignedValue | None = None
        stored = storage.get_signed_value(self._id)
        if stored is not None:
            current = SignedValue.decode_verified(stored)
            if current.id != self._id:
                raise DecodeError("storage: the stored signed value belongs to another id")
            self._current = current

    @property
    def id(self) -> bytes:
        return self._id

    @property
    def public_key(self) -> bytes:
        return self._public_key

    @property
    def salt(self) -> bytes:
        return self._salt

    @property
    def writable(self) -> bool:
        return self._keypair is not None

    @property
    def current(self) -> SignedValue | None:
        """The latest accepted version, or None."""
        return self._current

    @property
    def seq(self) -> int | None:
        return None if self._current is None else self._current.seq

    @property
    def value(self) -> bytes | None:
        return None if self._current is None else self._current.value

    def put(self, value: bytes, *, expected_seq: int | None = None) -> SignedValue:
        """Sign and store ``value`` with the next seq; returns it.

        ``expected_seq`` makes it a compare-and-swap: it fails unless the
        current seq (None when empty) is the one given.
        """
        if self._keypair is None:
            raise InvalidInput("this signed value is read-only here: no keypair")
        if expected_seq is not None and expected_seq != self.seq:
            raise SeqConflict(f"compare-and-swap failed: seq is {self.seq}, not {expected_seq}")
        seq = 1 if self._current is None else self._current.seq + 1
        signed = SignedValue.sign(self._keypair, seq, value, self._salt)
        if not self.apply(signed):
            # Another writer of the same storage got there first.
            raise SeqConflict("storage already holds this seq or a newer one")
        return signed

    def apply(self, signed: SignedValue | Buffer) -> bool:
        """Accept a (remote) version if it is newer, signed and valid. True when it was stored.

        An older or equal ``seq`` returns False (replication delivers
        duplicates). Raises :class:`DecodeError`, :class:`SignatureError`,
        :class:`InvalidInput` (another value's id) or
        :class:`VerificationError` (the validate hook said no).
        """
        if not isinstance(signed, SignedValue):
            signed = SignedValue.decode(signed)
        if signed.public_key != self._public_key or signed.salt != self._salt:
            raise InvalidInput("this signed value belongs to another key or salt")
        signed.verify()
        if self._current is not None and signed.seq <= self._current.seq:
            return False
        if self._validate is not None:
            try:
                accepted = self._validate(signed.value)
            except Exception as e:
                raise VerificationError(f"validate hook raised {e!r}") from e
            if not accepted:
                raise VerificationError("the validate hook rejected the value")
        if not self._storage.put_signed_value(self._id, signed.seq, signed.encode()):
            return False
        self._current = signed
        self._changes.notify(signed)
        return True

    def on_change(self, listener: Callable[[SignedValue], None]) -> Callable[[], None]:
        """Call ``listener(new_version)`` after each accepted version; returns an unsubscribe function."""
        return self._changes.subscribe(listener)

    async def changed(self) -> SignedValue:
        """Wait for the next accepted version; returns the latest one when it resumes."""
        await self._changes.wait()
        assert self._current is not None
        return self._current

    async def wait_for_seq(self, seq: int, timeout: float | None = None) -> SignedValue:
        """Wait until a version with at least ``seq`` is accepted. :class:`TimeoutError` on timeout."""
        with anyio.fail_after(timeout):
            while self._current is None or self._current.seq < seq:
                await self._changes.wait()
        return self._current

    def __repr__(self) -> str:
        return f"SignedValueFeed({self._id.hex()[:16]}…, seq={self.seq})"


__all__ = [
    "MAX_SALT_SIZE",
    "MAX_SEQ",
    "MAX_VALUE_SIZE",
    "SIGNED_VALUE_ID_KEY",
    "SIGNED_VALUE_NAMESPACE",
    "SIGNED_VALUE_VERSION",
    "SignedValue",
    "SignedValueFeed",
    "Validator",
    "value_id",
]
