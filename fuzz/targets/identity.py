"""Identity files (keystore.py), as a node reads its own at start.

Mode byte, then the file's bytes: 0. read without a passphrase; 1. with one
(Argon2id only runs at the file's cost if that is the cheapest libsodium
allows, so the fuzzer is not slowed to a crawl by a costly header).

Refusal: ``DecodeError``, ``InvalidInput`` (a sealed file without its
passphrase) or ``DecryptionError`` (``WrongPassphrase`` among them).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from unittest import mock

import nacl.pwhash

from fuzz.fixtures import keypair, mode
from fuzz.harness import Target
from hyphal.errors import DecodeError, DecryptionError, InvalidInput
from hyphal.keystore import (
    _HEADER,
    _KDF,
    KdfCost,
    decode_identity,
    encode_identity,
    identity_is_sealed,
    identity_public_key,
)

PASSPHRASE = "correct horse"
CHEAP = KdfCost(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)


def run(data: bytes) -> None:
    kind, data = mode(data, 2)
    public_key = identity_public_key(data)
    passphrase = None
    if kind == 1 and identity_is_sealed(data):
        opslimit, memlimit, _, _ = _KDF.unpack_from(data, _HEADER.size)
        if (opslimit, memlimit) == (CHEAP.opslimit, CHEAP.memlimit):
            passphrase = PASSPHRASE
    assert decode_identity(data, passphrase).public_key == public_key


def seeds() -> Iterator[bytes]:
    rng = random.Random(7)
    with mock.patch.object(secrets, "token_bytes", rng.randbytes):
        yield b"\x00" + encode_identity(keypair(16))
        yield b"\x01" + encode_identity(keypair(17), PASSPHRASE, CHEAP)


TARGET = Target("identity", run, (DecodeError, InvalidInput, DecryptionError), seeds)
