"""The in-memory transport: its streams behave like TCP's, and everything above runs over it unchanged
(handshake, channels, flow control, blob transfer, pools, a node's connections)."""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.abc
import pytest

from hyphal.blobs import BlobDownloader, BlobProvider, BlobStore
from hyphal.net import Channel, Connection, ConnectionConfig, ConnectionPool, connect, listen
from hyphal.net.memory import MemoryNetwork, MemoryTransport
from hyphal.net.transport import TransportAttribute, peer_name, remote_address
from hyphal.node import Node
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
WAIT = 15.0
CONFIG = ConnectionConfig(keepalive_interval=None, idle_timeout=None, close_timeout=1.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def echo_handler(connection: Connection) -> None:
    async def echo(channel: Channel) -> None:
        async with channel:
            try:
                async for message in channel:
                    await channel.send(message)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                pass

    async with anyio.create_task_group() as group:
        async for request in connection.incoming_channels():
            group.start_soon(echo, await request.accept())


async def stream_pair(
    network: MemoryNetwork,
) -> tuple[anyio.abc.ByteStream, anyio.abc.ByteStream]:
    """A dialled stream (from 10.0.0.2) and the one its listener (10.0.0.1) accepted."""
    listener = await network.transport("10.0.0.1").listen("10.0.0.1", 0)
    port = listener.addresses[0][1]
    client = await network.transport("10.0.0.2").dial("10.0.0.1", port)
    server = await listener.acceptors[0].accept()
    await listener.aclose()
    return client, server


# -- streams ------------------------------------------------------------------------------


async def test_streams_carry_addresses_and_bytes_in_order() -> None:
    network = MemoryNetwork()
    with anyio.fail_after(WAIT):
        client, server = await stream_pair(network)
        server_address = client.extra(TransportAttribute.remote_address)
        assert server_address[0] == "10.0.0.1"
        assert server.extra(TransportAttribute.local_address) == server_address
        client_address = server.extra(TransportAttribute.remote_address)
        assert client_address == client.extra(TransportAttribute.local_address)
        assert client_address[0] == "10.0.0.2"
        assert remote_address(server) == client_address
        assert peer_name(client) == f"10.0.0.1:{server_address[1]}"
        await client.send(b"one ")
        await client.send(memoryview(b"two"))
        received = b""
        while len(received) < 7:
            received += await server.receive()
        assert received == b"one two"


async def test_a_full_buffer_holds_the_writer_until_the_reader_reads() -> None:
    network = MemoryNetwork(buffer_size=1024)
    data = os.urandom(10_000)
    sent = anyio.Event()
    with anyio.fail_after(WAIT):
        client, server = await stream_pair(network)

        async def send() -> None:
            await client.send(data)
            sent.set()

        async with anyio.create_task_group() as group:
            group.start_soon(send)
            await anyio.wait_all_tasks_blocked()
            assert not sent.is_set()  # 1024 bytes in the pipe, the rest waits for the reader
            first = await server.receive(100_000)
            assert len(first) == 1024
            received = first
            while len(received) < len(data):
                received += await server.receive(100_000)
        assert sent.is_set()
        assert received == data


async def test_send_eof_and_close_end_the_other_side() -> None:
    network = MemoryNetwork()
    with anyio.fail_after(WAIT):
        client, server = await stream_pair(network)
        await client.send(b"last words")
        await client.send_eof()
        assert await server.receive() == b"last words"
        with pytest.raises(anyio.EndOfStream):
            await server.receive()
        with pytest.raises(anyio.ClosedResourceError):
            await client.send(b"after eof")
        await server.send(b"the other way still works")  # a half-close, as TCP's
        assert await client.receive() == b"the other way still works"

        client, server = await stream_pair(network)
        blocked_receive = anyio.Event()

        async def receive_until_closed() -> None:
            blocked_receive.set()
            with pytest.raises(anyio.EndOfStream):
                await server.receive()

        async with anyio.create_task_group() as group:
            group.start_soon(receive_until_closed)
            await blocked_receive.wait()
            await client.aclose()  # wakes the blocked reader with an end of stream
        with pytest.raises(anyio.BrokenResourceError):
            await server.send(b"nobody reads this")
        with pytest.raises(anyio.ClosedResourceError):
            await client.receive()


async def test_dialling_nothing_is_refused_and_addresses_are_taken_once() -> None:
    network = MemoryNetwork()
    transport = MemoryTransport(network, "10.0.0.1")
    with pytest.raises(ConnectionRefusedError):
        await transport.dial("10.0.0.9", 7000)
    with pytest.raises(ConnectionRefusedError):  # connect lets it through, as for TCP
        await connect("10.0.0.9", 7000, KeyPair.generate(), config=CONFIG, transport=transport)
    listener = await transport.listen("10.0.0.1", 7000)
    with pytest.raises(OSError, match="in use"):
        await transport.listen("10.0.0.1", 7000)
    other = await transport.listen("10.0.0.1", 0)
    assert other.addresses[0][1] not in (0, 7000)
    await transport.dial("10.0.0.1", 7000)  # taken by the listener, never accepted
    await listener.aclose()
    await other.aclose()
    assert network.listening() == []
    with pytest.raises(ConnectionRefusedError):
        await transport.dial("10.0.0.1", 7000)
    wildcard = await transport.listen("0.0.0.0", 7001)
    stream = await MemoryTransport(network, "10.0.0.5").dial("10.0.0.1", 7001)
    accepted = await wildcard.acceptors[0].accept()
    assert accepted.extra(TransportAttribute.local_address) == ("10.0.0.1", 7001)
    assert remote_address(accepted) == stream.extra(TransportAttribute.local_address)
    await wildcard.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await wildcard.acceptors[0].accept()


async def test_closing_a_listener_ends_the_streams_nobody_accepted() -> None:
    network = MemoryNetwork()
    transport = network.transport("10.0.0.1")
    listener = await transport.listen("10.0.0.1", 0)
    stream = await transport.dial("10.0.0.1", listener.addresses[0][1])
    await listener.aclose()
    with anyio.fail_after(WAIT), pytest.raises(anyio.EndOfStream):
        await stream.receive()


# -- everything above, over memory -----------------------------------------------------------


async def test_handshake_channels_and_flow_control_over_memory() -> None:
    # A small pipe: every large message crosses it in many pieces, the writer waiting on the reader.
    network = MemoryNetwork(buffer_size=4096)
    server_key, client_key = KeyPair.generate(), KeyPair.generate()
    server_side: list[Connection] = []

    async def handler(connection: Connection) -> None:
        server_side.append(connection)
        await echo_handler(connection)

    server_transport = network.transport("10.0.0.1")
    async with await listen(
        "10.0.0.1", 0, server_key, handler, config=CONFIG, transport=server_transport
    ) as lst:
        assert lst.addresses[0][0] == "10.0.0.1"
        with anyio.fail_after(WAIT):
            conn = await connect(
                "10.0.0.1",
                lst.port,
                client_key,
                expected_remote=server_key.public_key,
                config=CONFIG,
                transport=network.transport("10.0.0.2"),
            )
            async with conn:
                assert conn.remote_public_key == server_key.public_key
                assert conn.peer == f"10.0.0.1:{lst.port}"
                channels = [await conn.open_channel("echo", bytes([i])) for i in range(5)]
                messages = [os.urandom(300_000 + i) for i in range(5)]

                async def talk(channel: Channel, message: bytes) -> None:
                    await channel.send(message)
                    assert await channel.receive() == message

                async with anyio.create_task_group() as group:
                    for channel, message in zip(channels, messages, strict=True):
                        group.start_soon(talk, channel, message)
                assert server_side[0].remote_public_key == client_key.public_key
                assert server_side[0].peer.startswith("10.0.0.2:")
                await conn.aclose("done")
            await server_side[0].closed.wait()
            assert server_side[0].closed_by_remote
            assert server_side[0].close_reason == "done"


async def test_a_dropped_stream_breaks_the_connection_and_its_channels() -> None:
    network = MemoryNetwork()
    server_side: list[Connection] = []
    accepted = anyio.Event()
    streams: list[anyio.abc.ByteStream] = []
    transport = network.transport("10.0.0.1")

    class Recording(MemoryTransport):
        async def dial(self, host: str, port: int) -> anyio.abc.ByteStream:
            stream = await super().dial(host, port)
            streams.append(stream)
            return stream

    async def handler(connection: Connection) -> None:
        server_side.append(connection)
        accepted.set()
        await echo_handler(connection)

    async with await listen(
        "10.0.0.1", 0, KeyPair.generate(), handler, config=CONFIG, transport=transport
    ) as lst:
        with anyio.fail_after(WAIT):
            dialler = Recording(network, "10.0.0.2")
            conn = await connect("10.0.0.1", lst.port, KeyPair.generate(), config=CONFIG, transport=dialler)
            async with conn:
                channel = await conn.open_channel("echo", b"")
                await channel.wait_open()
                await accepted.wait()
                await streams[0].aclose()  # the cable is cut under the client
                with pytest.raises(anyio.BrokenResourceError):
                    await channel.receive()
                assert conn.close_reason is not None
                assert conn.close_reason.startswith("connection lost")
                await server_side[0].closed.wait()
                assert server_side[0].close_reason == "peer closed the connection without goodbye"


async def test_blob_transfer_over_memory(tmp_path: Path) -> None:
    network = MemoryNetwork(buffer_size=16 * 1024)
    data = os.urandom(3 * 2**20 + 777)
    source, destination = BlobStore(tmp_path / "a", sync=False), BlobStore(tmp_path / "b", sync=False)
    blob = source.import_bytes(data)
    provider = BlobProvider(source)
    async with await listen(
        "10.0.0.1",
        0,
        KeyPair.generate(),
        provider.serve_connection,
        config=CONFIG,
        transport=network.transport("10.0.0.1"),
    ) as lst:
        with anyio.fail_after(WAIT):
            conn = await connect(
                "10.0.0.1",
                lst.port,
                KeyPair.generate(),
                config=CONFIG,
                transport=network.transport("10.0.0.2"),
            )
            async with conn, BlobDownloader(destination, blob.hash) as download:
                await download.add_provider(conn)
                tag = await download.wait(WAIT)
    assert destination.read(tag.hash) == data


async def test_two_pools_over_memory_keep_one_connection() -> None:
    network = MemoryNetwork()
    alice, bob = KeyPair.generate(), KeyPair.generate()
    async with (
        ConnectionPool(alice, config=CONFIG, transport=network.transport("10.0.0.1")) as pool_a,
        ConnectionPool(bob, config=CONFIG, transport=network.transport("10.0.0.2")) as pool_b,
    ):
        listener_a = await pool_a.listen("10.0.0.1", 0)
        listener_b = await pool_b.listen("10.0.0.2", 0)
        dialled: list[Connection] = []

        async def dial(pool: ConnectionPool, host: str, port: int, remote: bytes) -> None:
            dialled.append(await pool.connect(host, port, expected_remote=remote))

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:
                group.start_soon(dial, pool_a, "10.0.0.2", listener_b.port, bob.public_key)
                group.start_soon(dial, pool_b, "10.0.0.1", listener_a.port, alice.public_key)
            winner = min(dialled, key=lambda c: c.local_public_key)
            kept_a = await pool_a.wait_for(bob.public_key, winner.handshake_hash)
            kept_b = await pool_b.wait_for(alice.public_key, winner.handshake_hash)
            assert len(pool_a) == len(pool_b) == 1
            channel = await kept_a.open_channel("hello", b"")
            request = await kept_b.next_channel_request()
            assert request is not None
            peer_channel = await request.accept()
            await channel.send(b"over memory")
            assert await peer_channel.receive() == b"over memory"
        with pytest.raises(ConnectionRefusedError):
            await pool_a.connect("10.0.0.3", 1)


async def test_two_nodes_share_a_feed_over_a_memory_transport() -> None:
    # The nodes' DHTs still bind UDP (on the memory listener's port number): hosts of their own.
    network = MemoryNetwork()
    with anyio.fail_after(WAIT):
        async with (
            Node(listen="127.0.0.21:0", transport=network.transport("127.0.0.21")) as a,
            Node(listen="127.0.0.22:0", transport=network.transport("127.0.0.22")) as b,
        ):
            assert ("127.0.0.21", a.address[1]) in network.listening()
            notes = await a.own_feed("notes")
            notes.feed.append_batch([b"first", b"second"])
            conn = await b.connect(*a.address, expected_remote=a.public_key)
            assert conn.peer == f"127.0.0.21:{a.address[1]}"
            copy = await b.follow_feed(notes.feed.key, notes.feed.manifest)
            copy.start_download(0, None)
            assert await copy.feed.get(1) == b"second"
            notes.feed.append(b"live")
            assert await copy.feed.get(2) == b"live"
