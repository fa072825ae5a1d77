"""Replicated secrets (secrets/records.py): records as holders store them, requests as nodes receive them.

Mode byte, then:

0. a secret record (decoded and verified; it must encode back to its bytes), then
   opened with the owner's key, as a client does;
1. a signed request (decoded and verified; it must encode back to its bytes).

Refusal: ``DecodeError``, ``SignatureError`` or ``DecryptionError``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from fuzz.fixtures import keypair, mode
from fuzz.harness import Target
from hyphal.errors import DecodeError, DecryptionError, SignatureError
from hyphal.secrets.records import Op, SecretRecord, SecretRequest

OWNER = keypair(11)
READER = keypair(12)


def run(data: bytes) -> None:
    kind, data = mode(data, 2)
    if kind == 0:
        record = SecretRecord.decode(data)
        assert record.encoded == data, "a secret record is not canonical"
        if not record.deleted and record.owner == OWNER.public_key:
            record.open(OWNER)
    else:
        request = SecretRequest.decode(data)
        assert request.encode() == data, "a secret request is not canonical"


def seeds() -> Iterator[bytes]:
    rng = random.Random(21)

    def random_bytes(n: int) -> bytes:
        return rng.randbytes(n)

    url = "https://mail.example/login"
    sealed = SecretRecord.seal(OWNER, url, 3, b"hunter2", (READER.public_key,), random_bytes)
    yield b"\x00" + sealed.encoded
    yield b"\x00" + SecretRecord.seal(OWNER, url, 1, b"", (), random_bytes).encoded
    yield b"\x00" + SecretRecord.tombstone(OWNER, url, 4).encoded
    node = bytes(range(32))
    yield b"\x01" + SecretRequest.sign(OWNER, Op.GET, sealed.id, node, 1.7e9, b"", random_bytes).encode()
    put = SecretRequest.sign(OWNER, Op.PUT, sealed.id, node, 1.7e9, sealed.encoded, random_bytes)
    yield b"\x01" + put.encode()


TARGET = Target("secret_records", run, (DecodeError, SignatureError, DecryptionError), seeds)
