"""The identity file: plain or sealed under a passphrase, atomic, strict to parse."""

from __future__ import annotations

import stat
from pathlib import Path

import nacl.pwhash
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal.errors import DecodeError, DecryptionError, HyphalError, InvalidInput, WrongPassphrase
from hyphal.keystore import (
    PLAIN_SIZE,
    SEALED_SIZE,
    KdfCost,
    decode_identity,
    encode_identity,
    identity_is_sealed,
    identity_public_key,
    load_identity,
    load_or_create_identity,
    save_identity,
)
from hyphal.signing import KeyPair

# The cheapest Argon2id libsodium allows: the format is under test here, not the KDF's cost.
CHEAP = KdfCost(nacl.pwhash.argon2id.OPSLIMIT_MIN, nacl.pwhash.argon2id.MEMLIMIT_MIN)
KEYPAIR = KeyPair(bytes(range(32)))


def test_plain_round_trip_and_public_key_in_the_clear() -> None:
    data = encode_identity(KEYPAIR)
    assert len(data) == PLAIN_SIZE
    assert not identity_is_sealed(data)
    assert identity_public_key(data) == KEYPAIR.public_key
    assert decode_identity(data).seed == KEYPAIR.seed


def test_sealed_round_trip_hides_the_seed() -> None:
    data = encode_identity(KEYPAIR, "correct horse", CHEAP)
    assert len(data) == SEALED_SIZE
    assert identity_is_sealed(data)
    assert KEYPAIR.seed not in data
    assert identity_public_key(data) == KEYPAIR.public_key  # `hyphal id` needs no passphrase
    assert decode_identity(data, "correct horse").seed == KEYPAIR.seed


def test_sealed_identity_refuses_wrong_or_missing_passphrase() -> None:
    data = encode_identity(KEYPAIR, "correct horse", CHEAP)
    with pytest.raises(WrongPassphrase):
        decode_identity(data, "battery staple")
    with pytest.raises(InvalidInput, match="passphrase"):
        decode_identity(data)
    with pytest.raises(InvalidInput):
        encode_identity(KEYPAIR, "", CHEAP)


def test_every_flipped_byte_of_a_sealed_file_is_refused() -> None:
    data = encode_identity(KEYPAIR, "pw", CHEAP)
    for i in range(len(data)):
        tampered = bytearray(data)
        tampered[i] ^= 0x01
        with pytest.raises(HyphalError):
            decode_identity(bytes(tampered), "pw")


def test_a_plain_file_whose_seed_is_not_its_key_is_refused() -> None:
    data = bytearray(encode_identity(KEYPAIR))
    data[-1] ^= 0xFF
    with pytest.raises(DecryptionError, match="does not match"):
        decode_identity(bytes(data))


def test_a_file_cannot_demand_an_absurd_kdf_cost() -> None:
    data = bytearray(encode_identity(KEYPAIR, "pw", CHEAP))
    # memlimit sits after magic, version, kind, public key and opslimit.
    offset = 4 + 1 + 1 + 32 + 8
    data[offset : offset + 8] = (2**62).to_bytes(8, "little")
    with pytest.raises(DecodeError, match="Argon2id"):
        decode_identity(bytes(data), "pw")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=SEALED_SIZE + 8))
def test_garbage_raises_only_typed_errors(data: bytes) -> None:
    with pytest.raises(HyphalError):
        decode_identity(data, "pw")


def test_files_are_private_and_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "node" / "identity"
    keypair, created = load_or_create_identity(path)
    assert created
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created = load_or_create_identity(path)
    assert not created
    assert again.seed == keypair.seed
    save_identity(path, keypair, "pw", CHEAP)  # re-seal in place
    assert load_identity(path, "pw").seed == keypair.seed
    assert [p.name for p in path.parent.iterdir()] == ["identity"]  # no temporary left behind


def test_missing_identity_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="hyphal init"):
        load_identity(tmp_path / "nothing")
