"""Signed values (signed_value.py) and the VALUE messages that carry them (replication/values.py).

Mode byte, then:

0. a signed value (it must encode back to its bytes), then its signature check;
1. a VALUE message as a subscriber receives it (decoded and verified).

Refusal: ``DecodeError`` or ``SignatureError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import keypair, mode
from fuzz.harness import Target
from hyphal.errors import DecodeError, SignatureError
from hyphal.replication.values import decode_value_message, encode_value_message
from hyphal.signed_value import MAX_SALT_SIZE, MAX_VALUE_SIZE, SignedValue


def run(data: bytes) -> None:
    kind, data = mode(data, 2)
    if kind == 0:
        value = SignedValue.decode(data)
        assert value.encode() == data, "a signed value decoded from a non-canonical encoding"
        value.verify()
    else:
        decode_value_message(data)


def seeds() -> Iterator[bytes]:
    owner = keypair(6)
    values = [
        SignedValue.sign(owner, 0, b""),
        SignedValue.sign(owner, 1, b"a small value", b"salt"),
        SignedValue.sign(owner, 2**63 - 1, bytes(MAX_VALUE_SIZE), bytes(MAX_SALT_SIZE)),
    ]
    for value in values:
        yield b"\x00" + value.encode()
        yield b"\x01" + encode_value_message(value)


TARGET = Target("signed_values", run, (DecodeError, SignatureError), seeds)
