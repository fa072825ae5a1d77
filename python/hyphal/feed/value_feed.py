"""Signed value feeds: the replica of one signed value (:mod:`hyphal.signed_value`), kept in storage.

A replica keeps only the latest value and accepts a new one only with a
strictly higher ``seq``, a valid signature, and the approval of an optional
``validate(value) -> bool`` hook. Byte layouts are in docs/PROTOCOL.md §9.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from typing_extensions import Buffer

from hyphal.errors import DecodeError, InvalidInput, SeqConflict, VerificationError
from hyphal.notifier import Notifier
from hyphal.signed_value import SignedValue, value_id
from hyphal.signing import KeyPair
from hyphal.storage.base import Storage

Validator = Callable[[bytes], bool]


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


__all__ = ["SignedValueFeed", "Validator"]
