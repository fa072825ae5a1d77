"""RFC 8439 ChaCha20-Poly1305 (the Noise cipher) against libsodium via pynacl."""

from __future__ import annotations

import itertools

import nacl.bindings as sodium
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal import _core
from hyphal.aead import open_ietf, seal_ietf
from hyphal.errors import DecryptionError, InvalidInput

KEY = bytes(range(32))


@settings(max_examples=60, deadline=None)
@given(nonce=st.binary(min_size=12, max_size=12), message=st.binary(max_size=5000), ad=st.binary(max_size=64))
def test_matches_libsodium_both_ways(nonce: bytes, message: bytes, ad: bytes) -> None:
    sealed = seal_ietf(KEY, nonce, message, ad)
    assert sealed == sodium.crypto_aead_chacha20poly1305_ietf_encrypt(message, ad, nonce, KEY)
    assert open_ietf(KEY, nonce, sealed, ad) == message
    assert sodium.crypto_aead_chacha20poly1305_ietf_decrypt(sealed, ad, nonce, KEY) == message


@settings(max_examples=60, deadline=None)
@given(message=st.binary(min_size=1, max_size=300), data=st.data())
def test_any_flipped_bit_is_refused(message: bytes, data: st.DataObject) -> None:
    sealed = bytearray(seal_ietf(KEY, bytes(12), message, b"ad"))
    bit = data.draw(st.integers(0, len(sealed) * 8 - 1))
    sealed[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(DecryptionError):
        open_ietf(KEY, bytes(12), bytes(sealed), b"ad")


@pytest.mark.parametrize(("key", "nonce"), [(bytes(31), bytes(12)), (KEY, bytes(24)), (KEY, bytes(11))])
def test_wrong_sizes_are_invalid_input(key: bytes, nonce: bytes) -> None:
    with pytest.raises(InvalidInput):
        seal_ietf(key, nonce, b"x")
    with pytest.raises(InvalidInput):
        open_ietf(key, nonce, bytes(20))


def test_short_ciphertext_is_refused() -> None:
    with pytest.raises(DecryptionError):
        open_ietf(KEY, bytes(12), bytes(15))


@settings(max_examples=80, deadline=None)
@given(message=st.binary(max_size=3000), data=st.data())
def test_decrypt_parts_equals_decrypt_of_the_joined_parts(message: bytes, data: st.DataObject) -> None:
    sealed = seal_ietf(KEY, bytes(12), message, b"ad")
    cuts = sorted(data.draw(st.lists(st.integers(0, len(sealed)), max_size=5)))
    bounds = [0, *cuts, len(sealed)]
    parts = [memoryview(sealed)[a:b] for a, b in itertools.pairwise(bounds)]
    assert _core.chacha20poly1305_decrypt_parts(KEY, bytes(12), parts, b"ad") == message
    if message:
        flip = data.draw(st.integers(0, len(sealed) - 1))
        tampered = bytearray(sealed)
        tampered[flip] ^= 0x80
        parts = [bytes(tampered[a:b]) for a, b in itertools.pairwise(bounds)]
        with pytest.raises(DecryptionError):
            _core.chacha20poly1305_decrypt_parts(KEY, bytes(12), parts, b"ad")


def test_decrypt_parts_shorter_than_a_tag_is_refused() -> None:
    with pytest.raises(DecryptionError):
        _core.chacha20poly1305_decrypt_parts(KEY, bytes(12), [bytes(7), bytes(8)])


@settings(max_examples=80, deadline=None)
@given(
    parts=st.lists(st.binary(max_size=700), max_size=6),
    prefix=st.binary(max_size=8),
    ad=st.binary(max_size=16),
)
def test_encrypt_parts_is_the_prefix_and_the_seal_of_the_joined_parts(
    parts: list[bytes], prefix: bytes, ad: bytes
) -> None:
    sealed = _core.chacha20poly1305_encrypt_parts(KEY, bytes(12), parts, ad, prefix)
    assert sealed == prefix + seal_ietf(KEY, bytes(12), b"".join(parts), ad)
