"""The Rust blob core: ids equal BLAKE3, outboards, range encoding and the streaming verifier."""

from __future__ import annotations

import contextlib
import os

import blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import _core
from hyphal.errors import DecodeError, DecryptionError, InvalidInput, ProofError

G = _core.BLOB_GROUP_SIZE
SIZES = [0, 1, 1023, 1024, 1025, G - 1, G, G + 1, 2 * G, 3 * G + 5, 100_000, 4 * 2**20 + 7, 5 * 2**20]


def blob(size: int, seed: int = 0) -> bytes:
    return (bytes(range(251)) * (size // 251 + 2))[seed % 251 : seed % 251 + size]


def decode_all(root: bytes, size: int, start: int, end: int, encoded: bytes, piece: int) -> bytes:
    decoder = _core.RangeDecoder(root, size, start, end)
    out = bytearray()
    for at in range(0, max(len(encoded), 1), piece):
        _, groups = decoder.feed(encoded[at : at + piece])
        for first, data in groups:
            assert first * G == start * G + len(out)
            out += data
    assert decoder.done
    return bytes(out)


@pytest.mark.parametrize("size", SIZES)
def test_root_equals_blake3_package(size: int) -> None:
    data = os.urandom(size)
    root, outboard = _core.blob_outboard(data)
    assert root == blake3.blake3(data).digest()
    assert len(outboard) == _core.blob_outboard_size(size) == 64 * (_core.blob_group_count(size) - 1)
    builder = _core.OutboardBuilder()
    nodes = bytearray(len(outboard))
    for at in range(0, size, 12_345):
        builder.update(memoryview(data)[at : at + 12_345])
        for offset, run in builder.take_nodes():
            nodes[offset : offset + len(run)] = run
    assert builder.finalize() == root
    for offset, run in builder.take_nodes():
        nodes[offset : offset + len(run)] = run
    assert bytes(nodes) == outboard
    assert builder.length == size


@pytest.mark.parametrize("size", [0, 1, G, G + 1, 5 * G + 3, 2**20 + 1])
def test_every_range_round_trips(size: int) -> None:
    data = blob(size)
    root, outboard = _core.blob_outboard(data)
    n = _core.blob_group_count(size)
    for start, end in {(0, n), (n - 1, n), (0, 1), (n // 2, n), (max(0, n // 2 - 1), max(1, n // 2 + 1))}:
        lo, hi = start * G, min(end * G, size)
        encoded = _core.blob_encode_range(root, size, outboard, data[lo:hi], start, end)
        assert len(encoded) == _core.blob_encoded_len(size, start, end)
        for piece in (1000, G + 64, 10**9):
            assert decode_all(root, size, start, end, encoded, piece) == data[lo:hi]
        _core.blob_verify_range(root, size, outboard, data[lo:hi], start, end)


def test_outboard_reorder() -> None:
    data = blob(5 * G + 1)
    _, outboard = _core.blob_outboard(data)
    pre = _core.blob_outboard_reorder(len(data), outboard, "pre")
    post = _core.blob_outboard_reorder(len(data), outboard, "post")
    assert sorted(pre[i : i + 64] for i in range(0, len(pre), 64)) == sorted(
        outboard[i : i + 64] for i in range(0, len(outboard), 64)
    )
    assert post[-64:] == outboard[3 * 64 : 4 * 64]  # the root's node is last in post-order
    assert pre[:64] == outboard[3 * 64 : 4 * 64]  # and first in pre-order
    with pytest.raises(InvalidInput):
        _core.blob_outboard_reorder(len(data), outboard, "sideways")
    with pytest.raises(InvalidInput):
        _core.blob_outboard_reorder(len(data) + G, outboard, "pre")


def test_any_single_byte_flip_on_the_wire_is_caught() -> None:
    size = 3 * G + 100
    data = blob(size)
    root, outboard = _core.blob_outboard(data)
    encoded = _core.blob_encode_range(root, size, outboard, data, 0, 4)
    for i in range(0, len(encoded), 7):
        bad = bytearray(encoded)
        bad[i] ^= 0x01
        decoder = _core.RangeDecoder(root, size, 0, 4)
        released = bytearray()

        def feed_all(
            decoder: _core.RangeDecoder = decoder, bad: bytearray = bad, released: bytearray = released
        ) -> None:
            for at in range(0, len(bad), 4096):
                for first, run in decoder.feed(bad[at : at + 4096])[1]:
                    assert data[first * G : first * G + len(run)] == run  # only genuine bytes come out
                    released.extend(run)

        with pytest.raises(ProofError):
            feed_all()
        assert len(released) < size
        with pytest.raises(ProofError):
            decoder.feed(b"")


def test_corrupt_store_is_refused_by_encoder() -> None:
    size = 4 * G
    data = blob(size)
    root, outboard = _core.blob_outboard(data)
    for i in (0, G + 3, size - 1):
        bad = bytearray(data)
        bad[i] ^= 0x80
        with pytest.raises(ProofError):
            _core.blob_encode_range(root, size, outboard, bad, 0, 4)
        with pytest.raises(ProofError):
            _core.blob_verify_range(root, size, outboard, bad, 0, 4)
    for i in range(0, len(outboard), 13):
        bad_ob = bytearray(outboard)
        bad_ob[i] ^= 0x01
        with pytest.raises(ProofError):
            _core.blob_verify_range(root, size, bad_ob, data, 0, 4)


def test_wrong_size_and_trailing_bytes() -> None:
    size = 4 * G
    data = blob(size)
    root, outboard = _core.blob_outboard(data)
    last = _core.blob_encode_range(root, size, outboard, data[3 * G :], 3, 4)
    for claimed in (size - 1, size + 1, 3 * G, 8 * G):
        n = _core.blob_group_count(claimed)
        decoder = _core.RangeDecoder(root, claimed, n - 1, n)
        with pytest.raises((ProofError, DecodeError)):
            decoder.feed(last)
    decoder = _core.RangeDecoder(root, size, 3, 4)
    with pytest.raises(DecodeError):
        decoder.feed(last + b"\0")


def test_bad_arguments_are_invalid_input() -> None:
    root = bytes(32)
    with pytest.raises(InvalidInput):
        _core.RangeDecoder(root, 10, 1, 1)
    with pytest.raises(InvalidInput):
        _core.RangeDecoder(root, 10, 0, 2)
    with pytest.raises(InvalidInput):
        _core.RangeDecoder(b"short", 10, 0, 1)
    with pytest.raises(InvalidInput):
        _core.RangeDecoder(root, -1, 0, 1)
    with pytest.raises(InvalidInput):
        _core.RangeDecoder(root, 2**64, 0, 1)
    with pytest.raises(InvalidInput):
        _core.blob_encode_range(root, G * 2, b"", bytes(G), 0, 1)
    with pytest.raises(InvalidInput):
        _core.blob_encode_range(root, G * 2, bytes(64), bytes(G - 1), 0, 1)
    builder = _core.OutboardBuilder()
    builder.finalize()
    with pytest.raises(InvalidInput):
        builder.update(b"x")
    with pytest.raises(InvalidInput):
        _core.RangeDecoder(root, 2**62 + 1, 0, 1)
    with pytest.raises(InvalidInput):
        _core.blob_encoded_len(2**64 - 1, 0, 2**50)
    assert _core.blob_encoded_len(2**62, 0, 2**48) == 2**62 + 64 * (2**48 - 1)
    # Huge sizes are fine to describe, never allocated.
    decoder = _core.RangeDecoder(root, 2**62, 0, 1)
    with pytest.raises(ProofError):
        decoder.feed(bytes(64))


@given(
    size=st.integers(0, 6 * G),
    start_frac=st.floats(0, 1),
    junk=st.binary(max_size=3000),
    cut=st.integers(0, 10_000),
)
def test_decoder_fuzz_never_crashes(size: int, start_frac: float, junk: bytes, cut: int) -> None:
    data = blob(size, seed=size)
    root, outboard = _core.blob_outboard(data)
    n = _core.blob_group_count(size)
    start = min(n - 1, int(start_frac * n))
    lo, hi = start * G, min(n * G, size)
    encoded = _core.blob_encode_range(root, size, outboard, data[lo:hi], start, n)
    # A genuine prefix followed by junk: everything released is genuine, junk is an error.
    cut = min(cut, len(encoded))
    stream = encoded[:cut] + junk
    decoder = _core.RangeDecoder(root, size, start, n)
    try:
        for at in range(0, len(stream), 777):
            for first, run in decoder.feed(stream[at : at + 777])[1]:
                assert data[first * G : first * G + len(run)] == run
    except (ProofError, DecodeError):
        pass
    # Pure junk under a random root.
    decoder = _core.RangeDecoder(os.urandom(32), size, start, n)
    with contextlib.suppress(ProofError, DecodeError):
        assert not decoder.feed(junk)[1] or size == 0


@pytest.mark.parametrize("size", [0, 1, _core.BLOB_SEGMENT_SIZE, _core.BLOB_SEGMENT_SIZE + 1, 3 * 2**20 + 5])
def test_sealer_round_trip(size: int) -> None:
    key = os.urandom(32)
    plain = os.urandom(size)
    sealer = _core.BlobSealer(key)
    parts = [sealer.update(plain[at : at + 100_000]) for at in range(0, size, 100_000)]
    last, plain_hash = sealer.finalize()
    sealed = b"".join(parts) + last
    assert plain_hash == blake3.blake3(plain).digest()
    assert len(sealed) == _core.blob_sealed_size(size)
    assert _core.blob_opened_size(len(sealed)) == size
    assert _core.blob_open_groups(key, len(sealed), 0, sealed) == plain
    bad = bytearray(sealed)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(DecryptionError):
        _core.blob_open_groups(key, len(sealed), 0, bad)
    with pytest.raises(DecryptionError):
        _core.blob_open_groups(os.urandom(32), len(sealed), 0, sealed)
    with pytest.raises(InvalidInput):
        _core.blob_open_groups(key, len(sealed), 10**6, sealed[:G])
