"""Connections over real TCP on 127.0.0.1 and ::1: identities, channels, flow control,
timers, deduplication and bad input from peers. The tests that need no raw socket run
over the in-memory transport too (the ``transport`` fixture)."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from hyphal import blake3
from hyphal.errors import (
    DecodeError,
    DecryptionError,
    HandshakeError,
    HyphalError,
    InvalidInput,
    ProtocolError,
)
from hyphal.net import (
    Channel,
    Connection,
    ConnectionConfig,
    ConnectionPool,
    Listener,
    connect,
    listen,
)
from hyphal.net.frames import (
    FrameEncoder,
    HandshakeMessageDecoder,
    encode_handshake_message,
    encode_varint,
)
from hyphal.net.handshake import Handshake, HandshakePayload, HandshakeResult
from hyphal.net.memory import MemoryNetwork
from hyphal.net.mux import MESSAGE_OVERHEAD, MessageType
from hyphal.net.transport import TcpTransport, Transport
from hyphal.signing import KeyPair

pytestmark = pytest.mark.anyio

LOOPBACKS = ["127.0.0.1", "::1"]
# Generous bounds for waits that should end at once: they only catch hangs.
WAIT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=["tcp", "memory"])
def transport(request: pytest.FixtureRequest) -> Transport:
    """Each test taking it runs over TCP and over memory (one host: dials reach its own listeners)."""
    if request.param == "tcp":
        return TcpTransport()
    return MemoryNetwork().transport("127.0.0.1")


def config(**overrides: object) -> ConnectionConfig:
    """Short timers, no keepalive or idle timeout unless a test asks for them."""
    base: dict[str, object] = {
        "handshake_timeout": 5.0,
        "keepalive_interval": None,
        "idle_timeout": None,
        "close_timeout": 1.0,
    }
    base.update(overrides)
    return ConnectionConfig(**base)  # type: ignore[arg-type]


async def echo(channel: Channel) -> None:
    async with channel:
        try:
            async for message in channel:
                await channel.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass


async def echo_handler(connection: Connection) -> None:
    """Accept every channel and echo what arrives on it."""
    async with anyio.create_task_group() as group:
        async for request in connection.incoming_channels():
            group.start_soon(echo, await request.accept())


@asynccontextmanager
async def serving(
    handler: Callable[[Connection], Awaitable[None]] = echo_handler,
    *,
    host: str = "127.0.0.1",
    keypair: KeyPair | None = None,
    cfg: ConnectionConfig | None = None,
    transport: Transport | None = None,
) -> AsyncIterator[Listener]:
    async with await listen(
        host, 0, keypair or KeyPair.generate(), handler, config=cfg or config(), transport=transport
    ) as server:
        yield server


async def assert_serves_a_good_client(
    server: Listener, host: str = "127.0.0.1", transport: Transport | None = None
) -> None:
    with anyio.fail_after(WAIT):
        async with await connect(
            host, server.port, KeyPair.generate(), config=config(), transport=transport
        ) as conn:
            channel = await conn.open_channel("echo", b"check")
            await channel.send(b"still here?")
            assert await channel.receive() == b"still here?"


# -- handshake and identities ---------------------------------------------------------


def test_ipv6_loopback_is_available() -> None:
    # The IPv6 tests below must not silently pass on a machine without ::1.
    assert socket.has_ipv6
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
        probe.bind(("::1", 0))


@pytest.mark.parametrize("host", LOOPBACKS)
async def test_handshake_authenticates_both_identities(host: str, transport: Transport) -> None:
    client_key, server_key = KeyPair.generate(), KeyPair.generate()
    server_side: list[Connection] = []

    async def handler(connection: Connection) -> None:
        server_side.append(connection)
        await echo_handler(connection)

    server_cfg = config(user_data=b"server caps")
    async with serving(handler, host=host, keypair=server_key, cfg=server_cfg, transport=transport) as server:
        assert server.addresses[0][0] == host
        with anyio.fail_after(WAIT):
            client_cfg = config(user_data=b"client caps")
            conn = await connect(
                host,
                server.port,
                client_key,
                expected_remote=server_key.public_key,
                config=client_cfg,
                transport=transport,
            )
            async with conn:
                channel = await conn.open_channel("echo", b"")
                await channel.send(b"hello")
                assert await channel.receive() == b"hello"
                (remote,) = server_side
                assert conn.remote_public_key == server_key.public_key
                assert remote.remote_public_key == client_key.public_key
                assert conn.handshake_hash == remote.handshake_hash
                assert len(conn.handshake_hash) == 64
                assert conn.is_initiator
                assert not remote.is_initiator
                assert conn.remote_user_data == b"server caps"
                assert remote.remote_user_data == b"client caps"
                assert ("[" in conn.peer) == (host == "::1")


@pytest.mark.parametrize("host", LOOPBACKS)
async def test_wrong_expected_remote_fails_the_dial(
    host: str, transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    async with serving(host=host, transport=transport) as server:
        with anyio.fail_after(WAIT), pytest.raises(HandshakeError, match="expected peer"):
            await connect(
                host,
                server.port,
                KeyPair.generate(),
                expected_remote=KeyPair.generate().public_key,
                transport=transport,
            )
        assert any("handshake" in r.getMessage() and r.name == "hyphal.net" for r in caplog.records)
        await assert_serves_a_good_client(server, host, transport)


# -- channels --------------------------------------------------------------------------


@pytest.mark.parametrize("host", LOOPBACKS)
async def test_many_channels_at_once(host: str, transport: Transport) -> None:
    async with serving(host=host, transport=transport) as server:
        with anyio.fail_after(WAIT):
            async with await connect(
                host, server.port, KeyPair.generate(), config=config(), transport=transport
            ) as conn:

                async def talk(index: int) -> None:
                    channel = await conn.open_channel("echo", index.to_bytes(2, "big"))
                    messages = [os.urandom(index * 7 % 300) + bytes([index]) for _ in range(10)]
                    for message in messages:
                        await channel.send(message)
                    for message in messages:
                        assert await channel.receive() == message
                    await channel.aclose()

                async with anyio.create_task_group() as group:
                    for index in range(100):
                        group.start_soon(talk, index)


@asynccontextmanager
async def echo_channel(channel_id: bytes, transport: Transport) -> AsyncIterator[Channel]:
    """An open channel to an echo server, within the test's time limit."""
    async with serving(transport=transport) as server:
        with anyio.fail_after(WAIT):
            async with await connect(
                "127.0.0.1", server.port, KeyPair.generate(), config=config(), transport=transport
            ) as conn:
                channel = await conn.open_channel("echo", channel_id)
                await channel.wait_open()
                yield channel


async def test_large_messages(transport: Transport) -> None:
    async with echo_channel(b"big", transport) as channel:
        biggest = channel.max_message_size
        assert biggest > 4_000_000
        sizes = [biggest, 1, 1_000_003, biggest]
        messages = [os.urandom(size) for size in sizes]

        async def send_all() -> None:
            for message in messages:
                await channel.send(message)

        async with anyio.create_task_group() as group:
            group.start_soon(send_all)
            for message in messages:
                assert blake3(await channel.receive()) == blake3(message)
        with pytest.raises(InvalidInput):
            await channel.send(bytes(biggest + 1))


async def test_receive_buffer_hands_large_messages_over_uncopied(transport: Transport) -> None:
    async with echo_channel(b"views", transport) as channel:
        messages = [os.urandom(3_000_000), b"tiny", os.urandom(70_000)]
        for message in messages:
            await channel.send(message)
        got = [await channel.receive_buffer() for _ in messages]
        assert [bytes(g) for g in got] == messages
        # The big one is a read-only view of its frame, not a copy.
        assert isinstance(got[0], memoryview)
        assert got[0].readonly
        await channel.send(b"again")
        assert type(await channel.receive()) is bytes


async def test_reject_close_and_graceful_end(transport: Transport) -> None:
    closed_on_server = anyio.Event()
    server_conns: list[Connection] = []

    async def handler(connection: Connection) -> None:
        server_conns.append(connection)
        async for request in connection.incoming_channels():
            if request.protocol == "nope":
                await request.reject("not served here")
                continue
            channel = await request.accept()
            assert await channel.receive() == b"before close"
            with pytest.raises(anyio.EndOfStream):
                await channel.receive()
            assert channel.close_reason == "finished"
            closed_on_server.set()

    async with serving(handler, transport=transport) as server:
        with anyio.fail_after(WAIT):
            async with await connect(
                "127.0.0.1", server.port, KeyPair.generate(), config=config(), transport=transport
            ) as conn:
                refused = await conn.open_channel("nope", b"")
                with pytest.raises(anyio.BrokenResourceError):
                    await refused.wait_open()
                assert refused.close_reason == "not served here"
                channel = await conn.open_channel("ok", b"")
                await channel.send(b"before close")
                await channel.aclose("finished")
                with pytest.raises(anyio.ClosedResourceError):
                    await channel.send(b"after close")
                await closed_on_server.wait()
                await conn.aclose("all done")
                assert conn.close_reason == "all done"
                assert not conn.closed_by_remote
            await server_conns[0].closed.wait()
            assert server_conns[0].close_reason == "all done"
            assert server_conns[0].closed_by_remote
            assert server_conns[0].error is None


async def test_closing_a_connection_delivers_what_was_sent_first(transport: Transport) -> None:
    received: list[bytes] = []
    ended = anyio.Event()

    async def handler(connection: Connection) -> None:
        request = await connection.next_channel_request()
        assert request is not None
        channel = await request.accept()
        async for message in channel:  # ends on EndOfStream: the peer closed gracefully
            received.append(message)
        ended.set()

    async with serving(handler, transport=transport) as server:
        with anyio.fail_after(WAIT):
            async with await connect(
                "127.0.0.1", server.port, KeyPair.generate(), config=config(), transport=transport
            ) as conn:
                channel = await conn.open_channel("stream", b"")
                await channel.wait_open()
                for index in range(200):
                    await channel.send(index.to_bytes(4, "big") * 1000)
            await ended.wait()
    assert received == [index.to_bytes(4, "big") * 1000 for index in range(200)]


# -- flow control ------------------------------------------------------------------------


async def test_slow_reader_stalls_only_its_own_channel(transport: Transport) -> None:
    window = 64 * 1024
    message = bytes(4096)
    cost = len(message) + MESSAGE_OVERHEAD
    fast_done = anyio.Event()
    release_slow = anyio.Event()
    slow_received: list[bytes] = []
    server_channels: dict[str, Channel] = {}

    async def handler(connection: Connection) -> None:
        async def fast(channel: Channel) -> None:
            total = 0
            while total < 4 * 1024 * 1024:
                total += len(await channel.receive())
            fast_done.set()

        async def slow(channel: Channel) -> None:
            await release_slow.wait()
            for _ in range(100):
                slow_received.append(await channel.receive())

        async with anyio.create_task_group() as group:
            for _ in range(2):
                request = await connection.next_channel_request()
                assert request is not None
                channel = await request.accept()
                server_channels[request.protocol] = channel
                group.start_soon(fast if request.protocol == "fast" else slow, channel)

    async with serving(handler, cfg=config(channel_window=window), transport=transport) as server:
        with anyio.fail_after(WAIT):
            conn = await connect(
                "127.0.0.1",
                server.port,
                KeyPair.generate(),
                config=config(send_buffer=256 * 1024),
                transport=transport,
            )
            async with conn, anyio.create_task_group() as group:
                slow = await conn.open_channel("slow", b"")
                fast = await conn.open_channel("fast", b"")
                slow_sent = 0

                async def write_slow() -> None:
                    nonlocal slow_sent
                    for index in range(100):
                        await slow.send(index.to_bytes(4, "big") + message[4:])
                        slow_sent += 1

                group.start_soon(write_slow)
                for _ in range(1024):
                    await fast.send(message)
                    assert conn.queued_bytes <= 256 * 1024 + cost
                await fast_done.wait()  # 4 MiB flowed while the slow channel was stuck

                # The slow writer used exactly the window the reader granted and waits.
                assert slow_sent == window // cost
                assert slow.send_credit < cost
                assert server_channels["slow"].pending_messages == window // cost
                assert conn.queued_bytes == 0  # nothing piles up in the sender either

                release_slow.set()
            assert [m[:4] for m in slow_received] == [i.to_bytes(4, "big") for i in range(100)]
            assert slow_sent == 100


# -- timers --------------------------------------------------------------------------------


async def _hold_open(stream: anyio.abc.SocketStream) -> None:
    async with stream:
        await anyio.sleep_forever()


async def test_handshake_timeout_against_a_silent_server() -> None:
    async with (
        await anyio.create_tcp_listener(local_host="127.0.0.1") as silent,
        anyio.create_task_group() as group,
    ):
        group.start_soon(silent.serve, _hold_open)
        port = silent.extra(anyio.abc.SocketAttribute.local_port)
        with anyio.fail_after(WAIT), pytest.raises(HandshakeError, match="timed out"):
            await connect("127.0.0.1", port, KeyPair.generate(), config=config(handshake_timeout=0.2))
        group.cancel_scope.cancel()


async def test_a_peer_that_stops_reading_is_dropped() -> None:
    server_side: list[Connection] = []
    flooding = anyio.Event()

    async def handler(connection: Connection) -> None:
        request = await connection.next_channel_request()
        assert request is not None
        channel = await request.accept()
        if request.protocol != "bulk":
            await echo(channel)  # the good client after the bad one
            return
        server_side.append(connection)
        flooding.set()
        with contextlib.suppress(anyio.BrokenResourceError):
            while True:
                await channel.send(bytes(65536))

    async with serving(handler, cfg=config(idle_timeout=0.5)) as server:
        stream, result = await raw_handshake(server.port)
        encoder = _frames(result)
        open_bulk = bytes([MessageType.OPEN, 1]) + encode_varint(2**40) + b"\x04bulk\x00"
        async with stream:
            await stream.send(encoder.encode(open_bulk))
            with anyio.fail_after(WAIT):
                await flooding.wait()
                # Alive (it keeps sending) but it never reads: the server's writes stall.
                while not server_side[0].closed.is_set():
                    with anyio.move_on_after(0.1):
                        await server_side[0].closed.wait()
                    await stream.send(encoder.encode(_ping()))
        reason = server_side[0].close_reason
        assert reason is not None
        assert reason.startswith("write stalled"), reason
        await assert_serves_a_good_client(server)


async def test_handshake_timeout_against_a_silent_client(caplog: pytest.LogCaptureFixture) -> None:
    async with serving(cfg=config(handshake_timeout=0.2)) as server:
        with anyio.fail_after(WAIT):
            async with await anyio.connect_tcp("127.0.0.1", server.port) as silent:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await silent.receive()  # the server gives up and closes
        assert any("timed out" in r.getMessage() for r in caplog.records)
        await assert_serves_a_good_client(server)


async def test_idle_timeout_closes_a_silent_connection(transport: Transport) -> None:
    server_side: list[Connection] = []

    async def handler(connection: Connection) -> None:
        server_side.append(connection)
        await connection.closed.wait()

    async with serving(handler, transport=transport) as server:
        with anyio.fail_after(WAIT):
            conn = await connect(
                "127.0.0.1",
                server.port,
                KeyPair.generate(),
                config=config(idle_timeout=0.2),
                transport=transport,
            )
            async with conn:
                await conn.closed.wait()
                assert conn.close_reason is not None
                assert conn.close_reason.startswith("idle timeout")
            await server_side[0].closed.wait()
            assert server_side[0].closed_by_remote
            assert server_side[0].close_reason == conn.close_reason


async def test_keepalive_keeps_an_idle_connection_open(transport: Transport) -> None:
    timers = config(keepalive_interval=0.05, idle_timeout=0.25)
    server_side: list[Connection] = []

    async def handler(connection: Connection) -> None:
        server_side.append(connection)
        await connection.closed.wait()

    async with (
        serving(handler, cfg=timers, transport=transport) as server,
        await connect(
            "127.0.0.1", server.port, KeyPair.generate(), config=timers, transport=transport
        ) as conn,
    ):
        # Three idle timeouts pass with no application traffic at all.
        with anyio.move_on_after(0.75):
            await conn.closed.wait()
        assert not conn.closed.is_set(), conn.close_reason
        assert not server_side[0].closed.is_set()
        assert conn.last_pong is not None  # the pings were answered


# -- one connection per peer ----------------------------------------------------------------


async def test_simultaneous_dials_keep_the_same_connection_on_both_sides(transport: Transport) -> None:
    alice, bob = KeyPair.generate(), KeyPair.generate()
    async with (
        ConnectionPool(alice, config=config(), transport=transport) as pool_a,
        ConnectionPool(bob, config=config(), transport=transport) as pool_b,
    ):
        listener_a = await pool_a.listen("127.0.0.1", 0)
        listener_b = await pool_b.listen("::1", 0)
        dialled: dict[str, Connection] = {}

        async def dial(name: str, pool: ConnectionPool, host: str, port: int, remote: bytes) -> None:
            dialled[name] = await pool.connect(host, port, expected_remote=remote)

        with anyio.fail_after(WAIT):
            async with anyio.create_task_group() as group:
                group.start_soon(dial, "a", pool_a, "::1", listener_b.port, bob.public_key)
                group.start_soon(dial, "b", pool_b, "127.0.0.1", listener_a.port, alice.public_key)
            # The connection kept is the one dialled by the lower public key.
            lower = "a" if alice.public_key < bob.public_key else "b"
            higher = "b" if lower == "a" else "a"
            winner = dialled[lower]
            assert winner.is_initiator
            kept_a = await pool_a.wait_for(bob.public_key, winner.handshake_hash)
            kept_b = await pool_b.wait_for(alice.public_key, winner.handshake_hash)
            assert len(pool_a) == len(pool_b) == 1
            # The other dial was closed as a duplicate (unless its pool already knew the winner).
            other = dialled[higher]
            if other.handshake_hash != winner.handshake_hash:
                await other.closed.wait()
                assert other.close_reason == "duplicate"
            # The survivor works in both directions.
            near, far = (kept_a, kept_b) if lower == "a" else (kept_b, kept_a)
            channel = await near.open_channel("dedup", b"")
            request = await far.next_channel_request()
            assert request is not None
            peer_channel = await request.accept()
            await channel.send(b"one connection")
            assert await peer_channel.receive() == b"one connection"
            assert not kept_a.closed.is_set()
            assert not kept_b.closed.is_set()


async def test_a_later_dial_in_the_other_direction_is_deduplicated(transport: Transport) -> None:
    alice, bob = KeyPair.generate(), KeyPair.generate()
    async with (
        ConnectionPool(alice, config=config(), transport=transport) as pool_a,
        ConnectionPool(bob, config=config(), transport=transport) as pool_b,
    ):
        listener_a = await pool_a.listen("127.0.0.1", 0)
        listener_b = await pool_b.listen("127.0.0.1", 0)
        with anyio.fail_after(WAIT):
            first = await pool_a.connect("127.0.0.1", listener_b.port)
            await pool_b.wait_for(alice.public_key, first.handshake_hash)
            second = await pool_b.connect("127.0.0.1", listener_a.port)
            # Both sides prefer the connection whose initiator has the lower key.
            if alice.public_key < bob.public_key:
                assert second is pool_b.get(alice.public_key)
                assert second.handshake_hash == first.handshake_hash
            else:
                assert second.handshake_hash != first.handshake_hash
                await first.closed.wait()
                assert first.close_reason == "duplicate"
            kept = await pool_a.wait_for(bob.public_key, second.handshake_hash)
            assert kept.is_initiator == (alice.public_key < bob.public_key)
            assert len(pool_a) == len(pool_b) == 1


# -- bad input --------------------------------------------------------------------------------


async def raw_handshake(
    port: int, handshake: Handshake | None = None
) -> tuple[anyio.abc.SocketStream, HandshakeResult]:
    """A hand-driven client, so a test can put anything on the wire afterwards."""
    stream = await anyio.connect_tcp("127.0.0.1", port)
    handshake = handshake or Handshake(KeyPair.generate(), initiator=True)
    decoder = HandshakeMessageDecoder()
    await stream.send(encode_handshake_message(handshake.start()))
    while not handshake.complete:
        message = decoder.next_message()
        if message is None:
            decoder.feed(await stream.receive())
            continue
        reply = handshake.receive(message)
        if reply is not None:
            await stream.send(encode_handshake_message(reply))
    return stream, handshake.result


async def wait_until_closed_by_server(stream: anyio.abc.SocketStream) -> None:
    try:
        while True:
            await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return


class _Impostor(Handshake):
    def __init__(self, claimed: bytes) -> None:
        super().__init__(KeyPair.generate(), initiator=True)
        self._payload = HandshakePayload(claimed).encode()


def _frames(result: HandshakeResult, max_frame: int = 1 << 20) -> FrameEncoder:
    return FrameEncoder(result.send_cipher, max_frame)


def _ping() -> bytes:
    return bytes([MessageType.PING, 1])


async def _garbage(stream: anyio.abc.SocketStream, result: HandshakeResult) -> None:
    await stream.send(b"\x20\x00\x00\x00" + os.urandom(32))


async def _truncated(stream: anyio.abc.SocketStream, result: HandshakeResult) -> None:
    frame = _frames(result).encode(_ping())
    await stream.send(frame[:-3])
    await stream.send_eof()


async def _replayed(stream: anyio.abc.SocketStream, result: HandshakeResult) -> None:
    frame = _frames(result).encode(_ping())
    await stream.send(frame + frame)


async def _reordered(stream: anyio.abc.SocketStream, result: HandshakeResult) -> None:
    encoder = _frames(result)
    first, second = encoder.encode(_ping()), encoder.encode(_ping())
    await stream.send(second + first)


async def _oversize(stream: anyio.abc.SocketStream, result: HandshakeResult) -> None:
    await stream.send(struct.pack("<I", 64 * 1024 * 1024))  # the server allows 4 MiB


async def _unknown_message(stream: anyio.abc.SocketStream, result: HandshakeResult) -> None:
    await stream.send(_frames(result).encode(b"\x63"))


async def _window_exceeded(stream: anyio.abc.SocketStream, result: HandshakeResult) -> None:
    encoder = _frames(result)
    opened = bytes([MessageType.OPEN, 1, 0x80, 0x80, 0x04, 1]) + b"p" + b"\x00"
    data = bytes([MessageType.DATA, 1, 0x80, 0x80, 0x04]) + bytes(65536)  # never granted
    await stream.send(encoder.encode(opened) + encoder.encode(data))


BAD_FRAMES = {
    "garbage": (_garbage, DecryptionError),
    "truncated": (_truncated, DecodeError),
    "replayed": (_replayed, DecryptionError),
    "reordered": (_reordered, DecryptionError),
    "oversize": (_oversize, ProtocolError),
    "unknown-message": (_unknown_message, ProtocolError),
    "window-exceeded": (_window_exceeded, ProtocolError),
}


@pytest.mark.parametrize("case", list(BAD_FRAMES))
async def test_bad_frames_close_only_that_connection(case: str, caplog: pytest.LogCaptureFixture) -> None:
    send_bad, error = BAD_FRAMES[case]
    server_side: list[Connection] = []

    async def handler(connection: Connection) -> None:
        server_side.append(connection)
        await echo_handler(connection)

    async with serving(handler) as server:
        with anyio.fail_after(WAIT):
            # A good client connected before, and still there after, the bad one.
            async with await connect(
                "127.0.0.1", server.port, KeyPair.generate(), config=config()
            ) as bystander:
                bystander_channel = await bystander.open_channel("echo", b"")
                stream, result = await raw_handshake(server.port)
                async with stream:
                    await send_bad(stream, result)
                    await wait_until_closed_by_server(stream)
                bad = server_side[1]
                await bad.closed.wait()
                assert isinstance(bad.error, error), bad.close_reason
                assert bad.close_reason is not None
                assert type(bad.error).__name__ in bad.close_reason
                logged = [
                    r for r in caplog.records if r.name == "hyphal.net" and r.levelno == logging.WARNING
                ]
                assert any(bad.close_reason in r.getMessage() for r in logged)
                await bystander_channel.send(b"unaffected")
                assert await bystander_channel.receive() == b"unaffected"
            await assert_serves_a_good_client(server)


async def _garbage_handshake(port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"\x40\x00" + os.urandom(64))  # a 64-byte first message
        await wait_until_closed_by_server(stream)


async def _http_request(port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        # "GE" reads as a 17735-byte message that never comes: the handshake times out.
        await stream.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await wait_until_closed_by_server(stream)


async def _impostor_handshake(port: int) -> None:
    victim = KeyPair.generate().public_key
    stream, _ = await raw_handshake(port, _Impostor(victim))  # the impostor's side completes
    async with stream:
        await wait_until_closed_by_server(stream)


async def _tampered_handshake(port: int) -> None:
    handshake = Handshake(KeyPair.generate(), initiator=True)
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(encode_handshake_message(handshake.start()))
        decoder = HandshakeMessageDecoder()
        while (reply := decoder.next_message()) is None:
            decoder.feed(await stream.receive())
        third = bytearray(handshake.receive(reply) or b"")
        third[-1] ^= 1
        await stream.send(encode_handshake_message(bytes(third)))
        await wait_until_closed_by_server(stream)


BAD_HANDSHAKES = {
    "garbage": (_garbage_handshake, "payload"),
    "http": (_http_request, "timed out"),
    "wrong-identity": (_impostor_handshake, "does not match"),
    "tampered": (_tampered_handshake, "does not authenticate"),
}


@pytest.mark.parametrize("case", list(BAD_HANDSHAKES))
async def test_failed_handshakes_close_only_that_connection(
    case: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_bad_client, reason = BAD_HANDSHAKES[case]
    handled: list[Connection] = []

    async def handler(connection: Connection) -> None:
        handled.append(connection)
        await echo_handler(connection)

    async with serving(handler, cfg=config(handshake_timeout=0.3)) as server:
        with anyio.fail_after(WAIT):
            await run_bad_client(server.port)
        assert handled == []  # the handler never saw it
        assert any(reason in r.getMessage() for r in caplog.records if r.name == "hyphal.net"), [
            r.getMessage() for r in caplog.records
        ]
        await assert_serves_a_good_client(server)
        assert len(handled) == 1


async def test_a_failing_handler_does_not_stop_the_listener(
    transport: Transport, caplog: pytest.LogCaptureFixture
) -> None:
    calls = 0

    async def handler(connection: Connection) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("handler bug")
        await echo_handler(connection)

    async with serving(handler, transport=transport) as server:
        with anyio.fail_after(WAIT):
            async with await connect(
                "127.0.0.1", server.port, KeyPair.generate(), config=config(), transport=transport
            ) as conn:
                await conn.closed.wait()  # the server closed it when the handler failed
        assert any("handler" in r.getMessage() for r in caplog.records)
        await assert_serves_a_good_client(server, transport=transport)


async def test_errors_raised_by_channels_are_typed(transport: Transport) -> None:
    async with serving(transport=transport) as server:
        with anyio.fail_after(WAIT):
            conn = await connect(
                "127.0.0.1", server.port, KeyPair.generate(), config=config(), transport=transport
            )
            async with conn:
                channel = await conn.open_channel("echo", b"")
                with pytest.raises(InvalidInput):
                    await conn.open_channel("echo", b"")  # already open
                with pytest.raises(InvalidInput):
                    await conn.open_channel("echo", bytes(65))
                await channel.send(b"x")
                assert await channel.receive() == b"x"
            with pytest.raises(anyio.ClosedResourceError):
                await channel.receive()
            with pytest.raises(anyio.ClosedResourceError):
                await conn.open_channel("echo", b"again")
            assert isinstance(conn.error, HyphalError) is False
