"""Blob transfer over real TCP on 127.0.0.1: multi-provider downloads with bad providers,
progress and cancel, and a provider facing bad requests."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from hyphal import _core
from hyphal.blobs import (
    BlobDownloader,
    BlobProvider,
    BlobStore,
    DownloadConfig,
    DownloadFailed,
    ProviderConfig,
)
from hyphal.blobs import messages as m
from hyphal.blobs.provider import PROTOCOL, _Pacer
from hyphal.net import Channel, Connection, ConnectionConfig, connect, listen
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
G = _core.BLOB_GROUP_SIZE
WAIT = 30.0
CONFIG = ConnectionConfig(keepalive_interval=None, idle_timeout=None, close_timeout=1.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class CorruptProvider(BlobProvider):
    """Flips one byte in the middle of every reply."""

    def _encode(self, request: m.Get) -> bytes:
        encoded = bytearray(super()._encode(request))
        encoded[len(encoded) // 2] ^= 0x01
        return bytes(encoded)


class DyingProvider(BlobProvider):
    """Serves ``after`` GETs, then its whole connection dies."""

    def __init__(self, store: BlobStore, after: int) -> None:
        super().__init__(store)
        self.after = after
        self.served = 0
        self.scopes: list[anyio.CancelScope] = []

    async def _get(self, channel: Channel, request: m.Get, cancelled: set[int], pacer: _Pacer) -> None:
        if self.served >= self.after:
            for scope in self.scopes:
                scope.cancel()
            await anyio.sleep_forever()
        self.served += 1
        await super()._get(channel, request, cancelled, pacer)

    async def serve_connection(self, connection: Connection) -> None:
        with anyio.CancelScope() as scope:
            self.scopes.append(scope)
            await super().serve_connection(connection)


@asynccontextmanager
async def serving(provider: BlobProvider) -> AsyncIterator[Callable[[KeyPair], Awaitable[Connection]]]:
    """A listening provider; yields a function that connects a client to it."""
    async with await listen(
        "127.0.0.1", 0, KeyPair.generate(), provider.serve_connection, config=CONFIG
    ) as lst:

        async def dial(keypair: KeyPair) -> Connection:
            return await connect("127.0.0.1", lst.port, keypair, config=CONFIG)

        yield dial


def stores(tmp_path: Path, names: str) -> list[BlobStore]:
    return [BlobStore(tmp_path / n, sync=False) for n in names]


async def test_three_providers_one_corrupt_one_dying(tmp_path: Path) -> None:
    data = os.urandom(6 * 2**20 + 12345)
    good, bad, dying, dst = stores(tmp_path, "abcd")
    h = good.import_bytes(data).hash
    for s in (bad, dying):
        s.import_bytes(data)
    dying_provider = DyingProvider(dying, after=3)
    me = KeyPair.generate()
    config = DownloadConfig(request_groups=16, window=3)
    async with (
        serving(BlobProvider(good)) as dial_good,
        serving(CorruptProvider(bad)) as dial_bad,
        serving(dying_provider) as dial_dying,
    ):
        conns = [await dial_good(me), await dial_bad(me), await dial_dying(me)]
        async with conns[0], conns[1], conns[2], BlobDownloader(dst, h, config=config) as dl:
            for c in conns:
                await dl.add_provider(c)
            tag = await dl.wait(WAIT)
            reasons = dict(dl.dropped)
    assert dst.read(tag.hash) == data
    assert "ProofError" in reasons[conns[1].remote_public_key]
    assert dying_provider.served == 3
    assert dying_provider.scopes[0].cancel_called
    for s in (good, bad, dying, dst):
        s.close()


async def test_progress_cancel_and_resume(tmp_path: Path) -> None:
    data = os.urandom(4 * 2**20)
    src, dst = stores(tmp_path, "ab")
    h = src.import_bytes(data).hash
    me = KeyPair.generate()
    slow = BlobProvider(src, ProviderConfig(max_rate=8e6))
    async with serving(slow) as dial:
        conn = await dial(me)
        async with conn, BlobDownloader(dst, h, config=DownloadConfig(request_groups=8), flush_bytes=G) as dl:
            await dl.add_provider(conn)
            events = dl.events()
            first = await events.__anext__()
            assert 0 < first.bytes_done < len(data)
            assert first.bytes_total == len(data)
            assert first.providers == 1
            assert first.rate > 0
            assert first.eta is not None
            dl.cancel()
            with pytest.raises(DownloadFailed):
                await dl.wait(WAIT)
            await events.aclose()
    bits = dst.bits(h)
    assert bits is not None
    assert 0 < bits.present < bits.count
    seen: list[int] = []
    async with serving(BlobProvider(src)) as dial:
        conn = await dial(me)
        async with conn, BlobDownloader(dst, h, on_progress=lambda p: seen.append(p.bytes_done)) as dl:
            await dl.add_provider(conn)
            await dl.wait(WAIT)
    assert dst.has(h)
    assert dst.read(h) == data
    assert seen[0] > bits.present * G - G  # resumed, not restarted
    src.close()
    dst.close()


async def test_provider_joins_mid_download(tmp_path: Path) -> None:
    data = os.urandom(4 * 2**20)
    a, b, dst = stores(tmp_path, "abc")
    h = a.import_bytes(data).hash
    b.import_bytes(data)
    me = KeyPair.generate()
    late = DyingProvider(b, after=10**9)  # counts what it served
    async with serving(BlobProvider(a, ProviderConfig(max_rate=4e6))) as dial_a, serving(late) as dial_b:
        conn_a, conn_b = await dial_a(me), await dial_b(me)
        async with conn_a, conn_b, BlobDownloader(dst, h, config=DownloadConfig(request_groups=8)) as dl:
            await dl.add_provider(conn_a)
            events = dl.events()
            await events.__anext__()
            await dl.add_provider(conn_b)
            await dl.wait(WAIT)
            await events.aclose()
    assert dst.read(h) == data
    assert late.served > 0
    for s in (a, b, dst):
        s.close()


@pytest.mark.parametrize("size", [1_000_000, 6_000_000])
async def test_two_providers_do_not_both_send_the_whole_blob(tmp_path: Path, size: int) -> None:
    """With the default config one provider's first window could cover a blob this size; the
    work must be shared and the end game must not have both stream it all (on loopback a
    duplicate is sent in full long before its CANCEL lands)."""
    data = os.urandom(size)
    a, b, dst = stores(tmp_path, "abc")
    h = a.import_bytes(data).hash
    b.import_bytes(data)
    providers = [BlobProvider(a), BlobProvider(b)]
    sent = [0, 0]
    for i, provider in enumerate(providers):
        provider.on_sent = lambda _channel, n, i=i: sent.__setitem__(i, sent[i] + n)
    me = KeyPair.generate()
    async with serving(providers[0]) as dial_a, serving(providers[1]) as dial_b:
        conn_a, conn_b = await dial_a(me), await dial_b(me)
        async with conn_a, conn_b, BlobDownloader(dst, h) as dl:
            await dl.add_provider(conn_a)
            await dl.add_provider(conn_b)
            await dl.wait(WAIT)
    assert dst.read(h) == data
    assert sum(sent) <= 1.15 * size, sent  # the encoded ranges' tree nodes are ~0.5% of it
    for s in (a, b, dst):
        s.close()


async def request(channel: Channel, message: bytes) -> m.Reply:
    await channel.send(message)
    with anyio.fail_after(WAIT):
        return m.decode_reply(await channel.receive())


async def test_provider_answers_bad_requests_and_keeps_serving(tmp_path: Path) -> None:
    (src,) = stores(tmp_path, "a")
    data = os.urandom(3 * G + 5)
    h = src.import_bytes(data).hash
    partial_hash = os.urandom(32)
    src.open_partial(partial_hash, 10 * G)  # holds nothing yet
    async with serving(BlobProvider(src, ProviderConfig(max_queued=4))) as dial:
        conn = await dial(KeyPair.generate())
        async with conn:
            # Malformed: the channel is closed, with a reason.
            junk = await conn.open_channel(PROTOCOL, b"junk")
            await junk.send(b"\x07garbage")
            with pytest.raises(anyio.EndOfStream), anyio.fail_after(WAIT):
                await junk.receive()
            assert junk.close_reason == "malformed request"
            # The same connection still serves other channels.
            ch = await conn.open_channel(PROTOCOL, b"ok")
            absent = await request(ch, m.encode_has(1, os.urandom(32)))
            assert isinstance(absent, m.Have)
            assert absent.state is m.HaveState.ABSENT
            have = await request(ch, m.encode_has(2, h))
            assert isinstance(have, m.Have)
            assert have.state is m.HaveState.COMPLETE
            assert have.size == len(data)
            partial = await request(ch, m.encode_has(3, partial_hash))
            assert isinstance(partial, m.Have)
            assert partial.state is m.HaveState.PARTIAL
            assert partial.bitfield == bytes(2)
            cases = [
                (m.encode_get(4, os.urandom(32), 10, 0, 1), m.ErrorCode.NOT_FOUND),
                (m.encode_get(5, h, len(data) + 1, 0, 1), m.ErrorCode.BAD_REQUEST),
                (m.encode_get(6, h, len(data), 0, 9), m.ErrorCode.BAD_REQUEST),
                (m.encode_get(7, h, len(data), 2, 2), m.ErrorCode.BAD_REQUEST),
                (m.encode_get(8, h, len(data), 2**63, 2**64 - 1), m.ErrorCode.BAD_REQUEST),
                (m.encode_get(9, partial_hash, 10 * G, 0, 2), m.ErrorCode.NOT_AVAILABLE),
            ]
            for message, code in cases:
                reply = await request(ch, message)
                assert isinstance(reply, m.Error), (reply, code)
                assert reply.code == code, (reply, code)
            reply = await request(ch, m.encode_get(10, h, len(data), 1, 4))
            assert isinstance(reply, m.Data)
            assert reply.last
            decoder = _core.RangeDecoder(h, len(data), 1, 4)
            assert b"".join(r for _, r in decoder.feed(reply.payload)[1]) == data[G:]
            # A flood of requests past max_queued closes that channel only.
            flood = await conn.open_channel(PROTOCOL, b"flood")
            slow = await conn.open_channel(PROTOCOL, b"after")
            for i in range(50):
                await flood.send(m.encode_get(i, h, len(data), 0, 4))
            with anyio.fail_after(WAIT):
                try:
                    while True:
                        await flood.receive()
                except anyio.EndOfStream:
                    pass
            assert flood.close_reason == "too many requests"
            assert isinstance(await request(slow, m.encode_has(1, h)), m.Have)
    src.close()


async def test_large_get_is_served_from_a_thread(tmp_path: Path) -> None:
    (src,) = stores(tmp_path, "a")
    data = os.urandom(100 * G + 1)
    h = src.import_bytes(data).hash
    async with serving(BlobProvider(src, ProviderConfig(piece_size=300_000))) as dial:
        conn = await dial(KeyPair.generate())
        async with conn:
            ch = await conn.open_channel(PROTOCOL, b"big")
            await ch.send(m.encode_get(1, h, len(data), 0, 101))
            decoder = _core.RangeDecoder(h, len(data), 0, 101)
            got = bytearray()
            with anyio.fail_after(WAIT):
                while not decoder.done:
                    reply = m.decode_reply(await ch.receive())
                    assert isinstance(reply, m.Data)
                    for _, run in decoder.feed(reply.payload)[1]:
                        got += run
            assert reply.last
            assert got == data
    src.close()


async def test_provider_with_a_corrupt_disk_is_dropped(tmp_path: Path) -> None:
    """A provider whose stored copy went bad refuses to serve it (ERROR 4); the download
    drops it and completes from the others."""
    data = os.urandom(2 * 2**20 + 5)
    rotten, good, dst = stores(tmp_path, "abc")
    h = rotten.import_bytes(data).hash
    good.import_bytes(data)
    path = rotten.path / "data" / f"{h.hex()}.data"
    raw = bytearray(path.read_bytes())
    for at in range(0, len(raw), G):  # every group, so whatever it is asked for is bad
        raw[at] ^= 0x04
    path.write_bytes(raw)
    me = KeyPair.generate()
    async with serving(BlobProvider(rotten)) as dial_rotten, serving(BlobProvider(good)) as dial_good:
        c1, c2 = await dial_rotten(me), await dial_good(me)
        async with c1, c2, BlobDownloader(dst, h, config=DownloadConfig(request_groups=8)) as dl:
            await dl.add_provider(c1)
            await dl.add_provider(c2)
            await dl.wait(WAIT)
            reasons = dict(dl.dropped)
    assert dst.read(h) == data
    assert "error 4" in reasons[c1.remote_public_key]
    for s in (rotten, good, dst):
        s.close()
