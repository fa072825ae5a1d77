"""BEP 44 items: immutable (addressed by the SHA-1 of the value) and mutable (ed25519-signed).

A value ``v`` is any bencoded object; it is kept here as its bencoded bytes,
at most 1000 of them. A mutable item is found at ``SHA1(public_key ‖ salt)``
and its signature covers exactly the bencoded ``salt``/``seq``/``v`` pairs of
BEP 44 without the enclosing dict: ``4:salt<len>:<salt>3:seqi<seq>e1:v<v>``
(the ``salt`` pair only when there is a salt). SHA-1 is the mainline DHT's
own address function (BEP 5/44), used here for that and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from hyphal.errors import DecodeError, InvalidInput, SignatureError
from hyphal.mainline.messages import bdecode, bencached, bencode, get_bytes, get_int
from hyphal.signing import KeyPair, verify

MAX_VALUE_SIZE = 1000
MAX_SALT_SIZE = 64
MAX_SEQ = 2**63 - 1


def sha1(data: bytes) -> bytes:
    return hashlib.sha1(data, usedforsecurity=False).digest()


def encode_value(value: object) -> bytes:
    """``value`` bencoded, refused over 1000 bytes (BEP 44's limit)."""
    encoded = bencode(value)
    if len(encoded) > MAX_VALUE_SIZE:
        raise InvalidInput(
            f"a BEP 44 value is at most {MAX_VALUE_SIZE} bytes bencoded, this is {len(encoded)}"
        )
    return encoded


def immutable_target(v: bytes) -> bytes:
    """Where an immutable item lives: SHA-1 of its bencoded value."""
    return sha1(v)


def mutable_target(public_key: bytes, salt: bytes = b"") -> bytes:
    """Where a mutable item lives: SHA-1 of the public key and the salt."""
    return sha1(public_key + salt)


def signed_payload(salt: bytes, seq: int, v: bytes) -> bytes:
    """The exact bytes a mutable item's signature covers (BEP 44)."""
    fields: dict[bytes, object] = {b"seq": seq, b"v": bencached(v)}
    if salt:
        fields[b"salt"] = salt
    return bencode(fields)[1:-1]  # the dict's pairs, sorted, without ``d`` and ``e``


@dataclass(frozen=True, slots=True)
class ImmutableItem:
    v: bytes
    """The bencoded value."""

    @property
    def target(self) -> bytes:
        return immutable_target(self.v)

    @property
    def value(self) -> Any:
        return bdecode(self.v)

    @classmethod
    def of(cls, value: object) -> ImmutableItem:
        return cls(encode_value(value))


@dataclass(frozen=True, slots=True)
class MutableItem:
    public_key: bytes
    salt: bytes
    seq: int
    v: bytes
    signature: bytes

    @property
    def target(self) -> bytes:
        return mutable_target(self.public_key, self.salt)

    @property
    def value(self) -> Any:
        return bdecode(self.v)

    @classmethod
    def sign(cls, keypair: KeyPair, value: object, seq: int, salt: bytes = b"") -> MutableItem:
        if len(salt) > MAX_SALT_SIZE:
            raise InvalidInput(f"a salt is at most {MAX_SALT_SIZE} bytes")
        if not 0 <= seq <= MAX_SEQ:
            raise InvalidInput("seq must be in [0, 2^63)")
        v = encode_value(value)
        return cls(keypair.public_key, salt, seq, v, keypair.sign(signed_payload(salt, seq, v)))

    def verify(self) -> None:
        """Raise :class:`SignatureError` unless the signature covers salt, seq and v under the key."""
        try:
            good = verify(self.public_key, signed_payload(self.salt, self.seq, self.v), self.signature)
        except ValueError:  # a key that is no curve point, say
            good = False
        if not good:
            raise SignatureError("the mutable item's signature does not verify")

    def wire(self) -> dict[bytes, object]:
        """The item's fields in a ``get`` response or ``put`` query (salt only if any)."""
        out: dict[bytes, object] = {b"k": self.public_key, b"seq": self.seq, b"sig": self.signature}
        out[b"v"] = bencached(self.v)
        if self.salt:
            out[b"salt"] = self.salt
        return out

    @classmethod
    def from_wire(cls, d: dict[bytes, Any], salt: bytes) -> MutableItem:
        """Decode and verify an item from a response (``salt`` is the one we asked for) or a put.

        :class:`DecodeError` when malformed or oversized, :class:`SignatureError` when forged.
        """
        item = cls(
            get_bytes(d, b"k", size=32),
            salt,
            get_int(d, b"seq"),
            _value_of(d),
            get_bytes(d, b"sig", size=64),
        )
        item.verify()
        return item


def _value_of(d: dict[bytes, Any]) -> bytes:
    if b"v" not in d:
        raise DecodeError("v is missing")
    v = bencode(d[b"v"])
    if len(v) > MAX_VALUE_SIZE:
        raise DecodeError(f"v is over {MAX_VALUE_SIZE} bytes")
    return v


def immutable_from_wire(d: dict[bytes, Any], target: bytes) -> ImmutableItem:
    """An immutable item from a response, checked against the target asked for."""
    v = _value_of(d)
    if immutable_target(v) != target:
        raise SignatureError("the value does not hash to the target")  # a forged or corrupt value
    return ImmutableItem(v)


__all__ = [
    "MAX_SALT_SIZE",
    "MAX_SEQ",
    "MAX_VALUE_SIZE",
    "ImmutableItem",
    "MutableItem",
    "encode_value",
    "immutable_from_wire",
    "immutable_target",
    "mutable_target",
    "sha1",
    "signed_payload",
]
