"""hyphal.blake3 / keyed_hash / derive_key / Hasher against the ``blake3`` package."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from blake3 import blake3 as ref_blake3
from hypothesis import given, settings
from hypothesis import strategies as st
from typing_extensions import Buffer

import hyphal

# Sizes around BLAKE3's chunk (1 KiB) and the SIMD/parallel thresholds.
SIZES = [
    0,
    1,
    2,
    63,
    64,
    65,
    1023,
    1024,
    1025,
    2047,
    2048,
    2049,
    3 * 1024 + 7,
    16 * 1024 - 1,
    16 * 1024,
    16 * 1024 + 1,
    64 * 1024 + 3,
    100_003,
    (1 << 20) - 1,
    1 << 20,
    3 * (1 << 20) + 17,
    8 * (1 << 20),
]


def rand_bytes(n: int, seed: int = 0) -> bytes:
    return random.Random(seed * 1_000_003 + n).randbytes(n)


BUFFER_KINDS: list[tuple[str, Callable[[bytes], Buffer]]] = [
    ("bytes", bytes),
    ("bytearray", bytearray),
    ("memoryview", memoryview),
    # A slice of a larger buffer: only the viewed bytes may be hashed.
    ("memoryview-slice", lambda b: memoryview(b"\xaa" * 7 + b + b"\x55" * 9)[7 : 7 + len(b)]),
]

KEY = bytes(range(32))


@pytest.mark.parametrize("size", SIZES)
def test_blake3_matches_package(size: int) -> None:
    data = rand_bytes(size)
    expected = ref_blake3(data).digest()
    assert hyphal.blake3(data) == expected
    assert hyphal.blake3(data, parallel=True) == expected
    assert hyphal.blake3(data, parallel=False) == expected


def test_blake3_known_vector() -> None:
    # The published BLAKE3 hash of the empty input.
    assert hyphal.blake3(b"").hex() == "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 16 * 1024 + 1, 100_003, 3 * (1 << 20) + 17])
def test_keyed_hash_and_derive_key_match_package(size: int) -> None:
    data = rand_bytes(size, seed=1)
    assert hyphal.keyed_hash(KEY, data) == ref_blake3(data, key=KEY).digest()
    ctx = "hyphal tests 2026 derive"
    assert hyphal.derive_key(ctx, data) == ref_blake3(data, derive_key_context=ctx).digest()


@given(
    data=st.binary(max_size=3000),
    key=st.binary(min_size=32, max_size=32),
    ctx=st.text(max_size=40),
)
def test_keyed_and_derive_random(data: bytes, key: bytes, ctx: str) -> None:
    assert hyphal.blake3(data) == ref_blake3(data).digest()
    assert hyphal.keyed_hash(key, data) == ref_blake3(data, key=key).digest()
    assert hyphal.derive_key(ctx, data) == ref_blake3(data, derive_key_context=ctx).digest()


def test_modes_differ() -> None:
    data = b"same input"
    outs = {
        hyphal.blake3(data),
        hyphal.keyed_hash(KEY, data),
        hyphal.derive_key("a", data),
        hyphal.derive_key("b", data),
    }
    assert len(outs) == 4


@pytest.mark.parametrize(("kind", "wrap"), BUFFER_KINDS, ids=[k for k, _ in BUFFER_KINDS])
@pytest.mark.parametrize("size", [0, 1, 1025, 70_000])
def test_buffer_kinds(kind: str, wrap: Callable[[bytes], Buffer], size: int) -> None:
    data = rand_bytes(size, seed=2)
    buf = wrap(data)
    assert hyphal.blake3(buf) == ref_blake3(data).digest()
    assert hyphal.blake3(buf, parallel=True) == ref_blake3(data).digest()
    assert hyphal.keyed_hash(wrap(KEY), buf) == ref_blake3(data, key=KEY).digest()
    assert hyphal.derive_key("ctx", buf) == ref_blake3(data, derive_key_context="ctx").digest()
    h = hyphal.Hasher()
    h.update(buf)
    assert h.finalize() == ref_blake3(data).digest()
    hk = hyphal.Hasher(key=wrap(KEY))
    hk.update(buf)
    assert hk.finalize() == ref_blake3(data, key=KEY).digest()


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(c, len(data)) for c in cuts})
    pieces = []
    prev = 0
    for p in [*points, len(data)]:
        pieces.append(data[prev:p])
        prev = p
    return pieces


MODES = st.sampled_from(["plain", "keyed", "derive"])


def _new_hasher(mode: str) -> hyphal.Hasher:
    if mode == "plain":
        return hyphal.Hasher()
    if mode == "keyed":
        return hyphal.Hasher(key=KEY)
    return hyphal.Hasher(derive_key_context="hyphal tests hasher")


def _reference(mode: str, data: bytes) -> ref_blake3:
    if mode == "plain":
        return ref_blake3(data)
    if mode == "keyed":
        return ref_blake3(data, key=KEY)
    return ref_blake3(data, derive_key_context="hyphal tests hasher")


@given(
    size=st.integers(0, 20_000),
    seed=st.integers(0, 2**32),
    cuts=st.lists(st.integers(0, 20_000), max_size=12),
    mode=MODES,
)
def test_hasher_incremental_equals_one_shot(size: int, seed: int, cuts: list[int], mode: str) -> None:
    data = rand_bytes(size, seed)
    h = _new_hasher(mode)
    for piece in _split(data, cuts):
        h.update(piece)
    assert h.finalize() == _reference(mode, data).digest()
    if mode == "plain":
        assert h.finalize() == hyphal.blake3(data)


@given(
    size=st.integers(0, 5000),
    seed=st.integers(0, 2**32),
    split=st.integers(0, 5000),
    more=st.binary(max_size=2000),
    mode=MODES,
)
def test_hasher_copy_and_reuse_after_finalize(
    size: int, seed: int, split: int, more: bytes, mode: str
) -> None:
    data = rand_bytes(size, seed)
    split = min(split, size)
    h = _new_hasher(mode)
    h.update(data[:split])
    c = h.copy()
    # The copy is independent: feeding one does not change the other.
    c.update(b"diverge")
    h.update(data[split:])
    assert h.finalize() == _reference(mode, data).digest()
    assert c.finalize() == _reference(mode, data[:split] + b"diverge").digest()
    # finalize leaves the hasher usable.
    h.update(more)
    assert h.finalize() == _reference(mode, data + more).digest()
    c2 = h.copy()
    assert c2.finalize() == h.finalize()


@given(
    data=st.binary(max_size=3000),
    length=st.one_of(st.integers(1, 200), st.sampled_from([1, 31, 32, 33, 64, 65, 1024, 4097, 65535, 65536])),
    mode=MODES,
)
@settings(max_examples=30)
def test_hasher_xof(data: bytes, length: int, mode: str) -> None:
    h = _new_hasher(mode)
    h.update(data)
    out = h.finalize(length)
    assert len(out) == length
    assert out == _reference(mode, data).digest(length=length)
    # The XOF is a prefix-consistent stream: the default 32 bytes agree with it.
    common = min(32, length)
    assert h.finalize()[:common] == out[:common]


def test_hasher_xof_known_lengths() -> None:
    data = rand_bytes(5000, seed=3)
    h = hyphal.Hasher()
    h.update(data)
    for length in (1, 32, 65536):
        assert h.finalize(length) == ref_blake3(data).digest(length=length)
    assert h.finalize() == h.finalize(32)


def test_hasher_large_incremental() -> None:
    data = rand_bytes(3 * (1 << 20) + 5, seed=4)
    h = hyphal.Hasher()
    for i in range(0, len(data), 65_537):
        h.update(memoryview(data)[i : i + 65_537])
    assert h.finalize() == ref_blake3(data).digest()
