"""Feed manifests: canonical encoding, feed key and discovery key (docs/PROTOCOL.md §9)."""

from __future__ import annotations

import contextlib

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import KeyPair, errors
from hyphal.feed.manifest import DISCOVERY_KEY, MANIFEST_KEY, Manifest, discovery_key

KEYS = [KeyPair(bytes([i]) * 32).public_key for i in range(1, 6)]


def dk(context: str) -> bytes:
    return blake3.blake3(b"", derive_key_context=context).digest()


def kh(key: bytes, data: bytes) -> bytes:
    return blake3.blake3(data, key=key).digest()


def test_domain_keys_are_derived_from_their_contexts() -> None:
    assert dk("hyphal 2026-11 feed manifest") == MANIFEST_KEY
    assert dk("hyphal 2026-11 feed discovery") == DISCOVERY_KEY
    assert MANIFEST_KEY != DISCOVERY_KEY


def test_encoding_is_the_documented_layout() -> None:
    m = Manifest((KEYS[0], KEYS[1], KEYS[2]), quorum=2, label=b"photos")
    assert m.encode() == b"\x01\x02\x03" + KEYS[0] + KEYS[1] + KEYS[2] + b"\x06photos"
    assert Manifest.single(KEYS[0]).encode() == b"\x01\x01\x01" + KEYS[0] + b"\x00"


def test_feed_key_and_discovery_key_match_an_independent_blake3() -> None:
    m = Manifest((KEYS[0], KEYS[1]), quorum=1)
    assert m.key == kh(MANIFEST_KEY, m.encode())
    assert m.discovery_key == kh(DISCOVERY_KEY, m.key) == discovery_key(m.key)
    assert m.discovery_key != m.key


def test_every_field_changes_the_key() -> None:
    base = Manifest((KEYS[0], KEYS[1]), quorum=1)
    variants = [
        Manifest((KEYS[1], KEYS[0]), quorum=1),
        Manifest((KEYS[0], KEYS[1]), quorum=2),
        Manifest((KEYS[0], KEYS[1]), quorum=1, label=b"x"),
        Manifest((KEYS[0], KEYS[1], KEYS[2]), quorum=1),
    ]
    assert len({base.key, *(v.key for v in variants)}) == 5


@given(
    count=st.integers(1, 5),
    data=st.data(),
    label=st.binary(max_size=64),
)
def test_roundtrip(count: int, data: st.DataObject, label: bytes) -> None:
    quorum = data.draw(st.integers(1, count))
    m = Manifest(tuple(KEYS[:count]), quorum, label)
    assert Manifest.decode(m.encode()) == m
    assert m.signer_index(KEYS[count - 1]) == count - 1
    assert m.signer_index(b"\x00" * 32) is None


@pytest.mark.parametrize(
    ("signers", "quorum", "label"),
    [
        ((), 1, b""),
        ((KEYS[0],), 0, b""),
        ((KEYS[0],), 2, b""),
        ((KEYS[0], KEYS[0]), 1, b""),
        ((KEYS[0][:31],), 1, b""),
        ((KEYS[0],), 1, b"x" * 65),
        ((KEYS[0],), True, b""),
    ],
)
def test_invalid_manifests_are_refused(signers: tuple[bytes, ...], quorum: int, label: bytes) -> None:
    with pytest.raises(errors.InvalidInput):
        Manifest(signers, quorum, label)


@pytest.mark.parametrize(
    "encoded",
    [
        b"",
        b"\x01\x01",
        b"\x02\x01\x01" + KEYS[0] + b"\x00",  # version
        b"\x01\x01\x01" + KEYS[0],  # no label length
        b"\x01\x01\x01" + KEYS[0] + b"\x01",  # label shorter than its length
        b"\x01\x01\x01" + KEYS[0] + b"\x00\x00",  # trailing byte
        b"\x01\x00\x01" + KEYS[0] + b"\x00",  # quorum 0
        b"\x01\x02\x01" + KEYS[0] + b"\x00",  # quorum above N
        b"\x01\x01\x02" + KEYS[0] + KEYS[0] + b"\x00",  # duplicate signer
        b"\x01\x01\x00\x00",  # no signers
        b"\x01\x01\x01" + KEYS[0] + b"\x41" + b"x" * 65,  # label too long
    ],
)
def test_malformed_encodings_are_decode_errors(encoded: bytes) -> None:
    with pytest.raises(errors.DecodeError):
        Manifest.decode(encoded)


@given(st.binary(max_size=200))
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    try:
        m = Manifest.decode(data)
    except errors.DecodeError:
        return
    assert m.encode() == data  # whatever decodes is canonical


@given(st.binary(min_size=3, max_size=3), st.binary(max_size=40))
def test_mutated_valid_prefixes_only_raise_decode_error(header: bytes, tail: bytes) -> None:
    with contextlib.suppress(errors.DecodeError):
        Manifest.decode(header + KEYS[0] + KEYS[1] + tail)


def test_discovery_key_needs_a_32_byte_key() -> None:
    with pytest.raises(errors.InvalidInput):
        discovery_key(b"short")
