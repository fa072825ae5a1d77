"""Signed values replicate to connected subscribers over encrypted TCP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal import errors
from hyphal.feed.value_feed import SignedValueFeed
from hyphal.net.connection import Connection, connect, listen
from hyphal.replication.values import SignedValueReplication, decode_value_message, encode_value_message
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

TIMEOUT = 20
OWNER = KeyPair(bytes(range(32)))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@asynccontextmanager
async def serving(replication: SignedValueReplication, keypair: KeyPair) -> AsyncIterator[int]:
    async def handler(conn: Connection) -> None:
        await replication.attach(conn)
        await conn.closed.wait()

    async with await listen("127.0.0.1", 0, keypair, handler) as listener:
        yield listener.port


@pytest.mark.anyio
async def test_value_replicates_and_follows_updates(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = SignedValueFeed(ws, OWNER.public_key, salt=b"profile", keypair=OWNER)
        writer.put(b"v1")
        reader = SignedValueFeed(rs, OWNER.public_key, salt=b"profile")
        async with SignedValueReplication(writer) as wrep, serving(wrep, OWNER) as port:
            conn = await connect("127.0.0.1", port, KeyPair.generate())
            async with conn, SignedValueReplication(reader) as rrep:
                await rrep.attach(conn)
                await reader.wait_for_seq(1, timeout=TIMEOUT)
                assert reader.value == b"v1"
                writer.put(b"v2")
                await reader.wait_for_seq(2, timeout=TIMEOUT)
                assert reader.value == b"v2"
    # Persisted on the subscriber's side.
    with SqliteStorage(tmp_path / "r.db") as rs:
        assert SignedValueFeed(rs, OWNER.public_key, salt=b"profile").value == b"v2"


@pytest.mark.anyio
async def test_a_stale_peer_catches_up_and_never_rolls_us_back(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "a.db") as sa, SqliteStorage(tmp_path / "b.db") as sb:
        a = SignedValueFeed(sa, OWNER.public_key, keypair=OWNER)
        b = SignedValueFeed(sb, OWNER.public_key)
        old = a.put(b"old")
        a.put(b"new")
        assert b.apply(old)  # b holds seq 1, a holds seq 2
        async with SignedValueReplication(a) as arep, serving(arep, OWNER) as port:
            conn = await connect("127.0.0.1", port, KeyPair.generate())
            async with conn, SignedValueReplication(b) as brep:
                await brep.attach(conn)
                await b.wait_for_seq(2, timeout=TIMEOUT)
        assert (a.seq, a.value) == (2, b"new")
        assert (b.seq, b.value) == (2, b"new")


@pytest.mark.anyio
async def test_validate_hook_rejects_values(tmp_path: Path) -> None:
    with SqliteStorage(tmp_path / "w.db") as ws, SqliteStorage(tmp_path / "r.db") as rs:
        writer = SignedValueFeed(ws, OWNER.public_key, keypair=OWNER)
        reader = SignedValueFeed(rs, OWNER.public_key, validate=lambda v: not v.startswith(b"bad"))
        async with SignedValueReplication(writer) as wrep, serving(wrep, OWNER) as port:
            conn = await connect("127.0.0.1", port, KeyPair.generate())
            async with conn, SignedValueReplication(reader) as rrep:
                await rrep.attach(conn)
                writer.put(b"bad value")
                writer.put(b"good value")
                await reader.wait_for_seq(2, timeout=TIMEOUT)
                assert reader.value == b"good value"
                assert rrep.dropped == []  # the hook rejects values, not peers


@pytest.mark.anyio
async def test_forged_value_drops_the_peer_and_is_not_stored(tmp_path: Path) -> None:
    forger = KeyPair.generate()
    with SqliteStorage(tmp_path / "f.db") as fs, SqliteStorage(tmp_path / "r.db") as rs:
        reader = SignedValueFeed(rs, OWNER.public_key)
        # The forger subscribes to the owner's value, then pushes a version whose
        # signature does not verify under the owner's key.
        fake = SignedValueFeed(fs, OWNER.public_key)
        async with SignedValueReplication(fake) as frep, serving(frep, forger) as port:
            conn = await connect("127.0.0.1", port, KeyPair.generate())
            async with conn, SignedValueReplication(reader) as rrep:
                await rrep.attach(conn)
                genuine = SignedValue.sign(OWNER, 5, b"x")
                forged = bytearray(encode_value_message(genuine))
                forged[-1] ^= 1  # break the signature
                sub = frep.subscribers
                with anyio.fail_after(TIMEOUT):
                    while not sub:
                        await anyio.wait_all_tasks_blocked()
                await sub[0].channel.send(bytes(forged))
                with anyio.fail_after(TIMEOUT):
                    while not rrep.dropped:
                        await anyio.wait_all_tasks_blocked()
                assert "bad value" in rrep.dropped[0][1]
        assert reader.current is None


@given(st.binary(max_size=2000))
def test_decoder_raises_only_hyphal_errors(data: bytes) -> None:
    with suppress(errors.HyphalError):
        decode_value_message(data)


def test_decoder_round_trip() -> None:
    version = SignedValue.sign(OWNER, 3, b"hello", b"salt")
    assert decode_value_message(encode_value_message(version)) == version
    with pytest.raises(errors.DecodeError):
        decode_value_message(b"\x02" + version.encode())
