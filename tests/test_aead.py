"""XChaCha20-Poly1305 (PROTOCOL.md §7) against libsodium through pynacl."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_decrypt as nacl_decrypt,
)
from nacl.bindings import (
    crypto_aead_xchacha20poly1305_ietf_encrypt as nacl_encrypt,
)

import hyphal
from hyphal import _core
from hyphal.aead import KEY_SIZE, NONCE_SIZE, TAG_SIZE
from hyphal.errors import DecryptionError, InvalidInput

SIZES = [0, 1, 15, 16, 17, 63, 64, 65, 1000, 64 * 1024, 64 * 1024 + 1, 1 << 20]
AADS = [b"", b"x", b"associated data" * 7]


def rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n)


def flip(data: bytes, bit: int) -> bytes:
    b = bytearray(data)
    b[bit // 8] ^= 1 << (bit % 8)
    return bytes(b)


def test_sizes() -> None:
    assert (KEY_SIZE, NONCE_SIZE, TAG_SIZE) == (32, 24, 16)


@pytest.mark.parametrize("aad", AADS, ids=["no-aad", "1-byte-aad", "long-aad"])
@pytest.mark.parametrize("size", SIZES)
def test_interop_with_libsodium(size: int, aad: bytes) -> None:
    key = rand(32, size)
    nonce = rand(24, size + 1)
    msg = rand(size, size + 2)
    ours = hyphal.seal(key, nonce, msg, aad)
    assert len(ours) == size + 16
    theirs = nacl_encrypt(msg, aad, nonce, key)
    # Same algorithm, same inputs: byte-identical output.
    assert ours == theirs
    assert nacl_decrypt(ours, aad, nonce, key) == msg
    assert hyphal.open(key, nonce, theirs, aad) == msg


@pytest.mark.parametrize("size", [0, 63, 1 << 20])
def test_default_associated_data_is_empty(size: int) -> None:
    key, nonce, msg = rand(32, 1), rand(24, 2), rand(size, 3)
    ours = hyphal.seal(key, nonce, msg)
    assert nacl_decrypt(ours, b"", nonce, key) == msg
    assert hyphal.open(key, nonce, nacl_encrypt(msg, None, nonce, key)) == msg
    assert hyphal.open(key, nonce, ours) == msg


def test_buffer_arguments() -> None:
    key, nonce, msg, aad = rand(32, 4), rand(24, 5), rand(1000, 6), b"aad"
    expected = nacl_encrypt(msg, aad, nonce, key)
    big = b"\x00" * 5 + msg + b"\x00" * 5
    assert (
        _core.xchacha20poly1305_encrypt(
            bytearray(key), memoryview(nonce), memoryview(big)[5:-5], bytearray(aad)
        )
        == expected
    )
    assert hyphal.open(memoryview(key), bytearray(nonce), bytearray(expected), memoryview(aad)) == msg


@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=24, max_size=24),
    msg=st.binary(max_size=500),
    aad=st.binary(max_size=100),
)
def test_random_round_trip(key: bytes, nonce: bytes, msg: bytes, aad: bytes) -> None:
    ct = hyphal.seal(key, nonce, msg, aad)
    assert ct == nacl_encrypt(msg, aad, nonce, key)
    assert hyphal.open(key, nonce, ct, aad) == msg


@given(
    key=st.binary(min_size=32, max_size=32),
    nonce=st.binary(min_size=24, max_size=24),
    msg=st.binary(max_size=200),
    aad=st.binary(min_size=1, max_size=50),
    where=st.sampled_from(["ciphertext", "tag", "aad", "nonce", "key"]),
    data=st.data(),
)
def test_any_bit_flip_fails(
    key: bytes, nonce: bytes, msg: bytes, aad: bytes, where: str, data: st.DataObject
) -> None:
    ct = hyphal.seal(key, nonce, msg, aad)
    args = {"key": key, "nonce": nonce, "ciphertext": ct, "aad": aad}
    if where == "ciphertext":
        if not msg:
            where = "tag"
        else:
            args["ciphertext"] = flip(ct, data.draw(st.integers(0, len(msg) * 8 - 1), label="bit"))
    if where == "tag":
        args["ciphertext"] = flip(ct, data.draw(st.integers(len(msg) * 8, len(ct) * 8 - 1), label="bit"))
    elif where in ("aad", "nonce", "key"):
        value = args[where]
        args[where] = flip(value, data.draw(st.integers(0, len(value) * 8 - 1), label="bit"))
    with pytest.raises(DecryptionError):
        hyphal.open(args["key"], args["nonce"], args["ciphertext"], args["aad"])


def test_bit_flips_in_a_large_message() -> None:
    key, nonce, msg = rand(32, 7), rand(24, 8), rand(1 << 20, 9)
    ct = hyphal.seal(key, nonce, msg, b"hdr")
    rng = random.Random(10)
    for _ in range(5):
        bit = rng.randrange(len(ct) * 8)
        with pytest.raises(DecryptionError):
            hyphal.open(key, nonce, flip(ct, bit), b"hdr")
    with pytest.raises(DecryptionError):
        hyphal.open(key, nonce, ct, b"hdR")
    with pytest.raises(DecryptionError):
        hyphal.open(key, nonce, ct)


def test_truncated_or_extended_ciphertext_fails() -> None:
    key, nonce = rand(32, 11), rand(24, 12)
    ct = hyphal.seal(key, nonce, b"hello world", b"")
    for bad in (ct[:-1], ct[1:], ct + b"\x00", ct[:16], ct[:15], b""):
        with pytest.raises((DecryptionError, ValueError)):
            hyphal.open(key, nonce, bad)


@pytest.mark.parametrize("klen", [0, 16, 31, 33, 64])
def test_wrong_key_length(klen: int) -> None:
    with pytest.raises(InvalidInput):
        hyphal.seal(bytes(klen), bytes(24), b"m")
    with pytest.raises(InvalidInput):
        hyphal.open(bytes(klen), bytes(24), bytes(32))


@pytest.mark.parametrize("nlen", [0, 8, 12, 23, 25, 32])
def test_wrong_nonce_length(nlen: int) -> None:
    with pytest.raises(InvalidInput):
        hyphal.seal(bytes(32), bytes(nlen), b"m")
    with pytest.raises(InvalidInput):
        hyphal.open(bytes(32), bytes(nlen), bytes(32))
