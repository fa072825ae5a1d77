"""Secret store formats: sealed, signed records and signed requests."""

from __future__ import annotations

import contextlib
import random

import nacl.bindings
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.errors import DecodeError, DecryptionError, InvalidInput, SignatureError, VerificationError
from hyphal.net.handshake import static_keypair
from hyphal.secrets.records import (
    MAX_PLAINTEXT,
    Op,
    SecretRecord,
    SecretRequest,
    locator,
    secret_id,
    unwrap_key,
    wrap_key,
)
from hyphal.signing import KeyPair

OWNER = KeyPair(b"\x31" * 32)
READER = KeyPair(b"\x32" * 32)
OTHER = KeyPair(b"\x33" * 32)
URL = "https://vault.example.com/token"


def test_sealed_record_roundtrip_and_readers() -> None:
    record = SecretRecord.seal(OWNER, URL, 7, b"s3cret", (READER.public_key,))
    decoded = SecretRecord.decode(record.encoded)
    assert decoded == record
    assert decoded.id == secret_id(OWNER.public_key, locator(URL))
    assert decoded.open(OWNER) == b"s3cret"
    assert decoded.open(READER) == b"s3cret"
    assert b"s3cret" not in record.encoded
    with pytest.raises(DecryptionError):
        decoded.open(OTHER)


def test_records_cannot_be_forged_or_moved() -> None:
    record = SecretRecord.seal(OWNER, URL, 7, b"s3cret")
    raw = bytearray(record.encoded)
    raw[1 + 32 + 32] ^= 1  # the version
    with pytest.raises(SignatureError):
        SecretRecord.decode(bytes(raw))
    # The ciphertext is bound to the id and version even for someone who can rewrap keys.
    moved = SecretRecord._signed(
        OWNER, locator(URL), 8, (), record.wrapped_keys, record.nonce, record.ciphertext, False
    )
    with pytest.raises(DecryptionError):
        moved.open(OWNER)


def test_tombstone_and_limits() -> None:
    gone = SecretRecord.tombstone(OWNER, URL, 9)
    assert SecretRecord.decode(gone.encoded).deleted
    with pytest.raises(DecryptionError):
        gone.open(OWNER)
    with pytest.raises(InvalidInput):
        SecretRecord.seal(OWNER, URL, 1, bytes(MAX_PLAINTEXT + 1))
    with pytest.raises(InvalidInput):
        SecretRecord.seal(OWNER, URL, 1, b"x", (OWNER.public_key,))


def test_key_wrap_is_deterministic_given_randomness() -> None:
    rng = random.Random(5)
    data_key = bytes(range(32))
    wrapped = wrap_key(data_key, READER.public_key, rng.randbytes)
    assert wrap_key(data_key, READER.public_key, random.Random(5).randbytes) == wrapped
    assert unwrap_key(wrapped, READER) == data_key
    with pytest.raises(DecryptionError):
        unwrap_key(wrapped, OTHER)
    with pytest.raises(DecryptionError):
        unwrap_key(bytes(32) + wrapped[32:], READER)  # a low-order ephemeral key


def test_key_wrap_is_libsodiums_sealed_box_both_ways() -> None:
    data_key = bytes(range(32))
    reader_x = static_keypair(READER)
    ours = wrap_key(data_key, READER.public_key, random.Random(9).randbytes)
    assert nacl.bindings.crypto_box_seal_open(ours, reader_x.public, reader_x.private) == data_key
    theirs = nacl.bindings.crypto_box_seal(data_key, reader_x.public)
    assert unwrap_key(theirs, READER) == data_key


def test_request_roundtrip_and_forgery() -> None:
    sid = secret_id(OWNER.public_key, locator(URL))
    req = SecretRequest.sign(OWNER, Op.GET, sid, b"\x07" * 32, 1_800_000_000.5)
    assert SecretRequest.decode(req.encode()) == req
    assert req.timestamp_ms == 1_800_000_000_500
    raw = bytearray(req.encode())
    raw[1 + 32 + 8 + 16 + 32] ^= 1  # the node id
    with pytest.raises(SignatureError):
        SecretRequest.decode(bytes(raw))


@given(st.binary(max_size=700), st.lists(st.tuples(st.integers(0, 2000), st.integers(0, 255)), max_size=4))
def test_fuzz_secret_decoders(prefix: bytes, flips: list[tuple[int, int]]) -> None:
    """Only DecodeError (bad structure) or VerificationError (forgery) come out."""
    goods = [
        SecretRecord.seal(OWNER, URL, 3, b"abc", (READER.public_key,)).encoded,
        SecretRequest.sign(OWNER, Op.PUT, b"\x01" * 32, b"\x02" * 32, 5.0, b"body").encode(),
    ]
    for good in goods:
        raw = bytearray(prefix + good[len(prefix) :])
        for at, value in flips:
            raw[at % len(raw)] = value
        for decode in (SecretRecord.decode, SecretRequest.decode):
            with contextlib.suppress(DecodeError, VerificationError):
                decode(bytes(raw))
