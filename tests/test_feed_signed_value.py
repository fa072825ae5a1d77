"""Signed value feeds: one mutable value, strictly increasing seq, signature, validate hook."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import anyio
import blake3
import nacl.signing
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import KeyPair, errors
from hyphal.feed.value_feed import SignedValueFeed
from hyphal.signed_value import (
    MAX_VALUE_SIZE,
    SIGNED_VALUE_ID_KEY,
    SIGNED_VALUE_NAMESPACE,
    SignedValue,
    value_id,
)
from hyphal.storage import SqliteStorage

OWNER = KeyPair(b"v" * 32)
OTHER = KeyPair(b"x" * 32)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[SqliteStorage]:
    with SqliteStorage(tmp_path / "values.db") as s:
        yield s


def test_domain_keys() -> None:
    dk = blake3.blake3(b"", derive_key_context="hyphal 2026-11 signed value signature").digest()
    assert dk == SIGNED_VALUE_NAMESPACE
    dk = blake3.blake3(b"", derive_key_context="hyphal 2026-11 signed value id").digest()
    assert dk == SIGNED_VALUE_ID_KEY
    assert (
        value_id(OWNER.public_key, b"salt")
        == blake3.blake3(OWNER.public_key + b"salt", key=SIGNED_VALUE_ID_KEY).digest()
    )


def test_encoding_and_signable_are_the_documented_layout() -> None:
    sv = SignedValue.sign(OWNER, 7, b"hello", salt=b"s1")
    fields = OWNER.public_key + b"\x02s1" + struct.pack("<QH", 7, 5) + b"hello"
    assert sv.signable() == SIGNED_VALUE_NAMESPACE + fields
    assert sv.encode() == b"\x01" + fields + sv.signature
    nacl.signing.VerifyKey(OWNER.public_key).verify(sv.signable(), sv.signature)
    assert SignedValue.decode_verified(sv.encode()) == sv


@given(seq=st.integers(0, 2**63 - 1), value=st.binary(max_size=MAX_VALUE_SIZE), salt=st.binary(max_size=64))
def test_roundtrip(seq: int, value: bytes, salt: bytes) -> None:
    sv = SignedValue.sign(OWNER, seq, value, salt)
    assert SignedValue.decode_verified(sv.encode()) == sv


@given(st.binary(max_size=1200))
def test_arbitrary_bytes_only_raise_decode_error(data: bytes) -> None:
    try:
        sv = SignedValue.decode(data)
    except errors.DecodeError:
        return
    assert sv.encode() == data


@given(position=st.integers(0, 10**6), bit=st.integers(0, 7))
def test_any_flipped_bit_is_refused(position: int, bit: int) -> None:
    encoded = bytearray(SignedValue.sign(OWNER, 3, b"value", b"salt").encode())
    encoded[position % len(encoded)] ^= 1 << bit
    with pytest.raises((errors.DecodeError, errors.SignatureError)):
        SignedValue.decode_verified(bytes(encoded))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"value": b"x" * (MAX_VALUE_SIZE + 1)},
        {"salt": b"s" * 65},
        {"seq": -1},
        {"seq": 2**63},
    ],
)
def test_limits(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"keypair": OWNER, "seq": 1, "value": b"v", "salt": b""} | kwargs
    with pytest.raises(errors.InvalidInput):
        SignedValue.sign(**args)  # type: ignore[arg-type]


def test_oversized_values_do_not_decode() -> None:
    sv = SignedValue.sign(OWNER, 1, b"x" * MAX_VALUE_SIZE)
    encoded = sv.encode()
    at = 1 + 32 + 1 + 8
    too_big = encoded[:at] + struct.pack("<H", MAX_VALUE_SIZE + 1) + encoded[at + 2 :] + b"x"
    with pytest.raises(errors.DecodeError):
        SignedValue.decode(too_big)


def test_only_a_strictly_higher_seq_replaces_the_value(storage: SqliteStorage) -> None:
    writer = SignedValueFeed(storage, OWNER.public_key, keypair=OWNER)
    assert writer.current is None
    assert writer.seq is None
    assert writer.writable
    first = writer.put(b"one")
    assert (first.seq, writer.value) == (1, b"one")
    reader = SignedValueFeed(storage, OWNER.public_key, salt=b"elsewhere")
    assert reader.current is None  # another salt, another value
    replica = SignedValueFeed(SqliteStorage(":memory:"), OWNER.public_key)
    assert replica.apply(first.encode())
    assert not replica.apply(first)  # a duplicate
    v5 = SignedValue.sign(OWNER, 5, b"five")
    assert replica.apply(v5)
    assert replica.value == b"five"
    assert not replica.apply(SignedValue.sign(OWNER, 5, b"other five"))
    assert not replica.apply(SignedValue.sign(OWNER, 4, b"four"))
    assert replica.value == b"five"


def test_forgeries_and_strangers_are_refused(storage: SqliteStorage) -> None:
    feed = SignedValueFeed(storage, OWNER.public_key)
    forged = SignedValue(OWNER.public_key, 9, b"forged", OTHER.sign(b"anything"))
    with pytest.raises(errors.SignatureError):
        feed.apply(forged)
    with pytest.raises(errors.InvalidInput):
        feed.apply(SignedValue.sign(OTHER, 9, b"not yours"))
    with pytest.raises(errors.InvalidInput):
        feed.apply(SignedValue.sign(OWNER, 9, b"salted", b"salt"))
    with pytest.raises(errors.DecodeError):
        feed.apply(b"\x01garbage")
    assert feed.current is None
    assert storage.get_signed_value(feed.id) is None
    with pytest.raises(errors.InvalidInput):
        feed.put(b"no keypair")
    with pytest.raises(errors.InvalidInput):
        SignedValueFeed(storage, OWNER.public_key, keypair=OTHER)


def test_the_validate_hook_can_refuse(storage: SqliteStorage) -> None:
    def only_json(value: bytes) -> bool:
        if value == b"boom":
            raise ValueError("hook bug")
        return value.startswith(b"{")

    writer = SignedValueFeed(storage, OWNER.public_key, keypair=OWNER, validate=only_json)
    writer.put(b"{}")
    with pytest.raises(errors.VerificationError):
        writer.put(b"not json")
    with pytest.raises(errors.VerificationError):
        writer.apply(SignedValue.sign(OWNER, 7, b"boom"))
    assert writer.value == b"{}"
    assert writer.seq == 1


def test_compare_and_swap(storage: SqliteStorage) -> None:
    writer = SignedValueFeed(storage, OWNER.public_key, keypair=OWNER)
    writer.put(b"a", expected_seq=None)
    with pytest.raises(errors.SeqConflict):
        writer.put(b"b", expected_seq=5)
    assert writer.put(b"b", expected_seq=1).seq == 2


def test_persisted_and_reloaded(storage: SqliteStorage, tmp_path: Path) -> None:
    writer = SignedValueFeed(storage, OWNER.public_key, salt=b"s", keypair=OWNER)
    writer.put(b"v1")
    writer.put(b"v2")
    storage.close()
    with SqliteStorage(tmp_path / "values.db") as again:
        reloaded = SignedValueFeed(again, OWNER.public_key, salt=b"s", keypair=OWNER)
        assert (reloaded.seq, reloaded.value) == (2, b"v2")
        assert reloaded.put(b"v3").seq == 3


def test_a_corrupt_stored_value_is_refused(storage: SqliteStorage) -> None:
    SignedValueFeed(storage, OWNER.public_key, keypair=OWNER).put(b"v")
    vid = value_id(OWNER.public_key)
    other = SignedValue.sign(OTHER, 1, b"moved")
    storage._conn.execute("UPDATE signed_values SET value = ? WHERE id = ?", (other.encode(), vid))
    with pytest.raises(errors.DecodeError):
        SignedValueFeed(storage, OWNER.public_key)


@pytest.mark.anyio
async def test_changes_can_be_awaited_and_subscribed(storage: SqliteStorage) -> None:
    writer = SignedValueFeed(storage, OWNER.public_key, keypair=OWNER)
    seen: list[int] = []
    writer.on_change(lambda sv: seen.append(sv.seq))
    got: list[bytes] = []
    waiting, got_one = anyio.Event(), anyio.Event()

    async def subscriber() -> None:
        waiting.set()  # nothing yields between here and the wait inside changed()
        got.append((await writer.changed()).value)
        got_one.set()
        got.append((await writer.wait_for_seq(3, timeout=5)).value)

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(subscriber)
            await waiting.wait()
            writer.put(b"one")
            await got_one.wait()
            writer.put(b"two")
            writer.put(b"three")
    assert got == [b"one", b"three"]
    assert seen == [1, 2, 3]
    with pytest.raises(TimeoutError):
        await writer.wait_for_seq(10, timeout=0)


def test_a_stale_writer_cannot_overwrite_a_newer_stored_value(storage: SqliteStorage) -> None:
    first = SignedValueFeed(storage, OWNER.public_key, keypair=OWNER)
    stale = SignedValueFeed(storage, OWNER.public_key, keypair=OWNER)
    first.put(b"first")
    with pytest.raises(errors.HyphalError):
        stale.put(b"stale")  # also seq 1: the storage keeps the first
    assert first.current is not None
    assert storage.get_signed_value(first.id) == first.current.encode()
