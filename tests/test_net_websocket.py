"""The WebSocket transport on 127.0.0.x: a byte stream like TCP's (half-close, large writes, close),
the encrypted connection over it, and a node that listens on TCP and WebSocket at once."""

from __future__ import annotations

from pathlib import Path

import anyio
import anyio.abc
import pytest

from hyphal.config import NodeConfig
from hyphal.groups.invite import Invite
from hyphal.net.connection import Connection, connect, listen
from hyphal.net.websocket import CHUNK, WebSocketTransport
from hyphal.node import Node
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio
WAIT = 30.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def read_all(stream: anyio.abc.ByteStream, size: int) -> bytes:
    got = bytearray()
    while len(got) < size:
        got += await stream.receive()
    return bytes(got)


async def test_a_websocket_stream_behaves_like_a_tcp_stream() -> None:
    transport = WebSocketTransport()
    listener = await transport.listen("127.0.0.71", 0)
    try:
        ((host, port),) = listener.addresses
        assert host == "127.0.0.71"
        with anyio.fail_after(WAIT):
            client = await transport.dial(host, port)
            server = await listener.acceptors[0].accept()
            big = bytes(range(256)) * (3 * CHUNK // 256 + 17)  # several messages' worth
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.send, big)
                assert await read_all(server, len(big)) == big
            # Half-close: the server reads the end of stream, and can still answer.
            await client.send(b"last")
            await client.send_eof()
            assert await read_all(server, 4) == b"last"
            with pytest.raises(anyio.EndOfStream):
                await server.receive()
            await server.send(b"reply")
            assert await client.receive() == b"reply"
            with pytest.raises(anyio.ClosedResourceError):
                await client.send(b"after eof")
            # Closing one side ends the other.
            await server.aclose()
            with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                await client.receive()
            await client.aclose()
    finally:
        await listener.aclose()
    with pytest.raises(anyio.ClosedResourceError):
        await listener.acceptors[0].accept()


async def test_dialling_nothing_or_a_plain_tcp_server_is_an_os_error() -> None:
    transport = WebSocketTransport()
    with pytest.raises(ConnectionRefusedError):
        await transport.dial("127.0.0.72", 1)  # nothing listens there

    async def not_websocket(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await stream.receive()
            await stream.send(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")

    server = await anyio.create_tcp_listener(local_host="127.0.0.72", local_port=0)
    async with server, anyio.create_task_group() as tg:
        tg.start_soon(server.serve, not_websocket)
        port = server.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(WAIT), pytest.raises(ConnectionError, match="not a WebSocket endpoint"):
            await transport.dial("127.0.0.72", port)
        tg.cancel_scope.cancel()


async def test_the_encrypted_connection_runs_over_websocket_unchanged() -> None:
    transport = WebSocketTransport()
    server_keys, client_keys = KeyPair.generate(), KeyPair.generate()
    accepted: list[Connection] = []
    echoed = anyio.Event()

    async def serve(connection: Connection) -> None:
        accepted.append(connection)
        async for request in connection.incoming_channels():
            channel = await request.accept()
            async for message in channel:
                await channel.send(message[::-1])
                echoed.set()

    listener = await listen("127.0.0.73", 0, server_keys, serve, transport=transport)
    async with listener:
        with anyio.fail_after(WAIT):
            async with await connect(
                "127.0.0.73",
                listener.port,
                client_keys,
                expected_remote=server_keys.public_key,
                transport=transport,
            ) as connection:
                channel = await connection.open_channel("test/echo", b"x")
                await channel.send(b"over websocket")
                assert await channel.receive() == b"tekcosbew revo"
                payload = bytes(range(256)) * 4000  # a message across many WebSocket messages
                await channel.send(payload)
                assert await channel.receive() == payload[::-1]
                await connection.aclose()
        assert accepted[0].remote_public_key == client_keys.public_key


async def test_a_node_listens_on_tcp_and_websocket_and_a_group_syncs_over_websocket(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000
    config_a = NodeConfig(data_dir=tmp_path / "a", listen="127.0.0.74:0", listen_ws="127.0.0.74:0")
    async with Node(config=config_a, name="alice") as a, Node(tmp_path / "b", listen="127.0.0.75:0") as b:
        assert a.ws_address is not None
        ws = f"ws://127.0.0.74:{a.ws_address[1]}"
        assert ws in a.advertised_addresses()
        assert f"127.0.0.74:{a.address[1]}" in a.advertised_addresses()
        ga = await a.create_group("over websocket")
        ga.add_bytes("file.bin", data)
        invite = Invite.from_uri(ga.invite().to_uri())
        only_ws = Invite(invite.group_key, invite.secret, invite.name, (ws,))
        with anyio.fail_after(WAIT):
            gb = await b.join_group(only_ws.to_uri())
            (connection,) = b.pool.connections()
            assert connection.peer == ws.removeprefix("ws://")  # dialled over WebSocket
            result = await gb.sync_all()
        assert result.missing == ()
        assert await gb.read("file.bin") == data
        # TCP still answers beside it.
        async with Node(tmp_path / "c", listen="127.0.0.76:0") as c:
            with anyio.fail_after(WAIT):
                tcp = await c.dial(f"127.0.0.74:{a.address[1]}")
            assert tcp.remote_public_key == a.public_key
