"""Encrypted, multiplexed connections over any transport, on anyio.

:func:`connect` dials a peer and :func:`listen` serves them (through a
:class:`~hyphal.net.listener.Listener`), over a
:class:`~hyphal.net.transport.Transport` (TCP unless told otherwise); both
run the hyphal handshake (:mod:`hyphal.net.handshake`) and give a
:class:`Connection` whose :class:`~hyphal.net.channel.Channel` s carry
messages with per-channel flow control (:mod:`hyphal.net.mux`) in sealed
frames (:mod:`hyphal.net.frames`). A :class:`ChannelRequest` is a pair the
peer opened, waiting for this side to accept or reject it.

A connection runs three tasks while it is entered (``async with conn:``): a
reader that opens frames and hands messages to channels, a writer that packs
queued messages into frames and writes them, and a keepalive. Bad input from
the peer (garbage, a tampered, replayed or oversize frame, a protocol
violation) closes that connection alone, logs the reason on
``logging.getLogger("hyphal.net")`` and records the typed error in
:attr:`Connection.error`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import anyio
import anyio.abc
import anyio.lowlevel

from hyphal.errors import HandshakeError, HyphalError
from hyphal.net.address import format_address
from hyphal.net.channel import Channel
from hyphal.net.config import ConnectionConfig
from hyphal.net.frames import FrameDecoder, FrameEncoder
from hyphal.net.handshake import Handshake, HandshakeResult
from hyphal.net.handshake_io import run_handshake
from hyphal.net.listener import ConnectionHandler, Listener
from hyphal.net.mux import (
    MAX_ID_LEN,
    ChannelClosed,
    ChannelOpened,
    ChannelRequested,
    ChannelRequestWithdrawn,
    ChannelState,
    GoodbyeReceived,
    Mux,
    PongReceived,
    Readable,
    Writable,
)
from hyphal.net.transport import STREAM_ERRORS, TcpTransport, Transport, peer_name
from hyphal.signing import KeyPair

logger = logging.getLogger("hyphal.net")

_WRITE_SIZE = 64 * 1024


# -- connections -----------------------------------------------------------------


class Connection:
    """An authenticated, encrypted connection to one peer, carrying channels.

    Made by :func:`connect` or handed to a :func:`listen` handler. Enter it
    (``async with conn:``) to run it; leaving closes it. A :func:`listen`
    handler's connection is already running.

    It is its channels' :class:`~hyphal.net.channel.ChannelHost`: the methods
    under that heading are for them, not for users.
    """

    def __init__(
        self,
        stream: anyio.abc.ByteStream,
        result: HandshakeResult,
        *,
        local_public_key: bytes,
        config: ConnectionConfig | None = None,
        leftover: bytes = b"",
    ) -> None:
        config = config or ConnectionConfig()
        self.remote_public_key = result.remote_public_key
        self.local_public_key = local_public_key
        self.handshake_hash = result.handshake_hash
        self.is_initiator = result.is_initiator
        self.remote_user_data = result.remote_user_data
        self.peer = peer_name(stream)
        """The peer's address, for logs."""
        self.closed = anyio.Event()
        """Set once the connection is closed."""
        self.close_reason: str | None = None
        self.closed_by_remote = False
        """True when the peer closed the connection (``close_reason`` is then the peer's)."""
        self.error: HyphalError | None = None
        """Why the peer's input was refused, if that is how the connection ended."""
        self.last_pong: int | None = None
        self._config = config
        self._stream = stream
        send_limit = min(config.max_frame, result.remote_max_frame)
        self._mux = Mux(
            max_frame=send_limit,
            window=config.channel_window,
            max_pending=config.max_pending_channels,
            batch_size=config.batch_size,
        )
        self._encoder = FrameEncoder(result.send_cipher, send_limit)
        self._decoder = FrameDecoder(result.receive_cipher, config.max_frame)
        self._leftover = leftover
        self._channels: dict[int, Channel] = {}
        # Unanswered requests by pair, oldest first; the mux bounds how many.
        self._incoming: dict[tuple[str, bytes], ChannelRequest] = {}
        self._incoming_event = anyio.Event()
        # Insertion-ordered (not a set of id()-hashed channels): senders wake in the order they
        # blocked, not in memory-address order, so a simulation replays.
        self._room_waiters: dict[Channel, None] = {}
        self._wake = anyio.Event()
        # Only one task writes at a time: the writer task, or _close once the writer
        # has stopped. A flag and an event, not a lock: a lock costs an event-loop
        # round trip per flush even when nobody contends for it.
        self._flushing = False
        self._flush_done = anyio.Event()
        self._in_flight = 0
        self._last_sent = anyio.current_time()
        self._goodbye: str | None = None
        self._closing = False
        self._entered = False
        self._host: anyio.abc.TaskGroup | None = None
        self._tasks: anyio.abc.TaskGroup | None = None
        self._reader_done = anyio.Event()
        self._output_drained = anyio.Event()
        # App data queued stays under send_buffer plus one message; beyond this the
        # queue holds replies (PONG, REJECT, …) to a peer that sends but does not read.
        self._reader_pause_at = config.send_buffer + 2 * send_limit

    def __repr__(self) -> str:
        role = "initiator" if self.is_initiator else "responder"
        return f"Connection({self.peer}, remote={self.remote_public_key.hex()[:16]}…, {role})"

    # -- lifecycle -----------------------------------------------------------------

    async def __aenter__(self) -> Self:
        if self._entered:
            raise RuntimeError("a connection is entered once")
        self._entered = True
        host = anyio.create_task_group()
        await host.__aenter__()
        self._host = host
        # The tasks run in a group of their own, so closing the connection cancels
        # them and not the body of the caller's ``async with``.
        host.start_soon(self._run)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        try:
            await self.aclose()
        finally:
            assert self._host is not None
            suppressed = await self._host.__aexit__(exc_type, exc, tb)
        return suppressed

    async def aclose(self, reason: str = "") -> None:
        """Close gracefully: flush, tell the peer ``reason``, wait (briefly) for its end of stream."""
        await self._close(reason, notify=True, wait_for_peer=True)

    async def _run(self) -> None:
        async with anyio.create_task_group() as tasks:
            self._tasks = tasks
            if self._closing:
                tasks.cancel_scope.cancel()
                self._reader_done.set()
                return
            tasks.start_soon(self._reader)
            tasks.start_soon(self._writer)
            if self._config.keepalive_interval is not None:
                tasks.start_soon(self._keepalive, self._config.keepalive_interval)

    async def _close(
        self,
        reason: str,
        *,
        error: HyphalError | None = None,
        lost: bool = False,
        by_remote: bool = False,
        notify: bool,
        wait_for_peer: bool = False,
    ) -> None:
        if self._closing:
            if wait_for_peer:
                await self.closed.wait()
            return
        self._closing = True
        self.close_reason = reason
        self.error = error
        self.closed_by_remote = by_remote
        if error is not None or lost:
            logger.warning("connection with %s closed: %s", self.peer, reason)
        else:
            logger.debug("connection with %s closed: %s", self.peer, reason or "(no reason)")
        self._end_channels(error, lost=lost, by_remote=by_remote)
        self._output_drained.set()
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(self._config.close_timeout):
                if notify:
                    with contextlib.suppress(*STREAM_ERRORS, HyphalError):
                        self._mux.goodbye(reason)
                        while self._flushing:  # the writer is mid-write; it stops after
                            await self._flush_done.wait()
                        await self._flush()
                        await self._stream.send_eof()
                    if wait_for_peer and self._tasks is not None:
                        # The reader drains the socket until the peer's end of stream, so
                        # nothing unread makes the kernel reset the connection.
                        await self._reader_done.wait()
            await anyio.aclose_forcefully(self._stream)
        self.closed.set()
        if self._tasks is not None:
            self._tasks.cancel_scope.cancel()

    def _end_channels(self, error: HyphalError | None, *, lost: bool, by_remote: bool) -> None:
        receive_end: type[Exception]
        send_end: type[Exception]
        if error is not None or lost:
            receive_end = send_end = anyio.BrokenResourceError
        elif by_remote:
            receive_end, send_end = anyio.EndOfStream, anyio.BrokenResourceError
        else:
            receive_end = send_end = anyio.ClosedResourceError
        for channel in self._channels.values():
            channel.notify_connection_closed(receive_end, send_end, error, self.close_reason)
        self._incoming_event.set()

    # -- tasks -----------------------------------------------------------------------

    async def _reader(self) -> None:
        stream = self._stream
        idle = self._config.idle_timeout
        read_size = self._config.read_size
        try:
            if self._leftover:
                self._on_bytes(self._leftover)
                self._leftover = b""
            while True:
                if self._goodbye is not None:
                    await self._close(self._goodbye, by_remote=True, notify=False)
                    return
                while self._mux.outgoing_bytes > self._reader_pause_at and not self._closing:
                    # Stop reading until the peer reads: its requests cannot grow our memory.
                    if self._output_drained.is_set():
                        self._output_drained = anyio.Event()
                    await self._output_drained.wait()
                if idle is None or self._closing:
                    data = await stream.receive(read_size)
                else:
                    with anyio.move_on_after(idle) as scope:
                        data = await stream.receive(read_size)
                    if scope.cancelled_caught:
                        await self._close(
                            f"idle timeout: nothing received for {idle:g} s", lost=True, notify=True
                        )
                        return
                if not self._closing:
                    self._on_bytes(data)
        except anyio.EndOfStream:
            if not self._closing:
                try:
                    self._decoder.eof()
                except HyphalError as exc:
                    await self._close(f"{type(exc).__name__}: {exc}", error=exc, notify=False)
                else:
                    await self._close("peer closed the connection without goodbye", lost=True, notify=False)
        except HyphalError as exc:
            await self._close(f"{type(exc).__name__}: {exc}", error=exc, notify=True)
        except STREAM_ERRORS as exc:
            if not self._closing:
                await self._close(f"connection lost: {exc!r}", lost=True, notify=False)
        finally:
            self._reader_done.set()

    def _on_bytes(self, data: bytes) -> None:
        mux = self._mux
        channels = self._channels
        for plaintext in self._decoder.feed(data):
            for event in mux.receive(plaintext):
                # The two hot events first, without isinstance chains.
                if type(event) is Readable:
                    channel = channels.get(event.channel)
                    if channel is not None:
                        channel.notify_readable()
                elif type(event) is Writable:
                    channel = channels.get(event.channel)
                    if channel is not None:
                        channel.notify_writable()
                else:
                    self._on_event(event)
        if mux.has_output:
            self.wake_writer()

    def _on_event(self, event: object) -> None:
        if isinstance(event, ChannelOpened):
            channel = self._channels.get(event.channel)
            if channel is not None:
                channel.notify_opened()
        elif isinstance(event, ChannelClosed):
            channel = self._channels.get(event.channel)
            if channel is not None:
                channel.notify_closed_by_peer(event.reason)
        elif isinstance(event, ChannelRequested):
            self._incoming[event.protocol, event.id] = ChannelRequest(event.protocol, event.id, self)
            self._incoming_event.set()
        elif isinstance(event, ChannelRequestWithdrawn):
            self._incoming.pop((event.protocol, event.id), None)
        elif isinstance(event, PongReceived):
            self.last_pong = event.nonce
        elif isinstance(event, GoodbyeReceived):
            self._goodbye = event.reason

    async def _writer(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake = anyio.Event()
                if self._closing:
                    return  # _close writes what is left
                await self._flush()
        except HyphalError as exc:  # the nonce space is exhausted
            await self._close(f"{type(exc).__name__}: {exc}", error=exc, notify=False)
        except TimeoutError:
            timeout = self._config.idle_timeout
            await self._close(
                f"write stalled for {timeout:g} s: the peer is not reading", lost=True, notify=False
            )
        except STREAM_ERRORS as exc:
            if not self._closing:
                await self._close(f"connection lost: {exc!r}", lost=True, notify=False)

    async def _flush(self) -> None:
        self._flushing = True
        self._flush_done = anyio.Event()
        try:
            await self._write_queued()
        finally:
            self._flushing = False
            self._flush_done.set()

    async def _write_queued(self) -> None:
        mux = self._mux
        encode = self._encoder.encode_parts
        stall_timeout = self._config.idle_timeout
        while mux.has_output:
            frames = [encode(parts) for parts in mux.take_frame_parts(_WRITE_SIZE)]
            # One write per batch: the frames of many small messages leave in one
            # syscall, while a batch stays small enough to be sealed and copied in cache.
            # A lone (large) frame goes out as it was sealed, without another copy.
            data = frames[0] if len(frames) == 1 else b"".join(frames)
            self._in_flight = len(data)
            try:
                if stall_timeout is None:
                    await self._stream.send(data)
                else:
                    # A peer that stops reading altogether (not one slow channel:
                    # credit keeps that off the socket) would hold this write forever.
                    with anyio.fail_after(stall_timeout):
                        await self._stream.send(data)
            finally:
                self._in_flight = 0
            self._last_sent = anyio.current_time()
            self._output_drained.set()
            # Wake blocked senders at half the buffer, not at every write, so that
            # each wake-up queues several messages.
            if self._room_waiters and self.queued_bytes <= self._config.send_buffer // 2:
                waiters, self._room_waiters = self._room_waiters, {}
                for channel in waiters:
                    channel.notify_writable()

    async def _keepalive(self, interval: float) -> None:
        nonce = 0
        while True:
            await anyio.sleep(max(0.0, self._last_sent + interval - anyio.current_time()))
            if anyio.current_time() - self._last_sent >= interval:
                nonce += 1
                self._mux.ping(nonce)
                self.wake_writer()
                self._last_sent = anyio.current_time()

    @property
    def queued_bytes(self) -> int:
        """Bytes of messages queued or being written to the socket (bounded by ``send_buffer``)."""
        return self._mux.outgoing_bytes + self._in_flight

    @property
    def closing(self) -> bool:
        """True once the connection started closing (:attr:`closed` is set when it is done)."""
        return self._closing

    # -- what its channels need (ChannelHost) -----------------------------------------

    def wake_writer(self) -> None:
        self._wake.set()

    def has_send_room(self) -> bool:
        return self._mux.outgoing_bytes + self._in_flight < self._config.send_buffer

    def notify_when_send_room(self, channel: Channel) -> None:
        self._room_waiters[channel] = None

    def channels(self) -> list[Channel]:
        """The channels open (or opening) on this connection now, for status displays."""
        return list(self._channels.values())

    def channel_closed(self, channel: Channel) -> None:
        if self._channels.get(channel.number) is channel:
            del self._channels[channel.number]

    # -- channels --------------------------------------------------------------------

    async def open_channel(self, protocol: str, id: bytes) -> Channel:  # noqa: A002
        """Open ``(protocol, id)``. The channel can send once the peer opens it too
        (at once if it already asked); :meth:`Channel.wait_open` waits for that."""
        if self._closing:
            raise anyio.ClosedResourceError(self.close_reason or "")
        number = self._mux.open(protocol, id)
        channel = Channel(self, self._mux, number, protocol, id)
        self._channels[number] = channel
        if self._mux.state(number) is ChannelState.OPEN:
            channel.notify_opened()
        self.wake_writer()
        await anyio.lowlevel.checkpoint()
        return channel

    async def next_channel_request(self) -> ChannelRequest | None:
        """The next pair the peer opened and this side has not; ``None`` once the connection closed."""
        while True:
            if self._closing:
                return None
            if self._incoming:
                request = self._incoming.pop(next(iter(self._incoming)))
                await anyio.lowlevel.checkpoint()
                return request
            if self._incoming_event.is_set():
                self._incoming_event = anyio.Event()
            await self._incoming_event.wait()

    def incoming_channels(self) -> AsyncIterator[ChannelRequest]:
        """``async for request in conn.incoming_channels()``: ends when the connection closes."""
        return IncomingChannels(self)

    def ping(self) -> None:
        """Send a PING now (the peer answers with a PONG; see :attr:`last_pong`)."""
        self._mux.ping(0)
        self.wake_writer()


@dataclass(eq=False)
class ChannelRequest:
    """The peer opened ``(protocol, id)``, which this side has not: accept or reject it."""

    protocol: str
    id: bytes
    connection: Connection = field(repr=False)

    async def accept(self) -> Channel:
        """Open the pair here too; the channel is open at once.

        ``anyio.ClosedResourceError`` if the peer withdrew the request meanwhile:
        opening the pair then would ask the peer for a new channel it never wanted.
        """
        if not self.connection._mux.is_requested(self.protocol, self.id):
            raise anyio.ClosedResourceError("the peer withdrew its channel request")
        return await self.connection.open_channel(self.protocol, self.id)

    async def reject(self, reason: str = "") -> None:
        self.connection._mux.reject(self.protocol, self.id, reason)
        self.connection.wake_writer()
        await anyio.lowlevel.checkpoint()


class IncomingChannels:
    """``async for request in connection.incoming_channels()``."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> ChannelRequest:
        request = await self._connection.next_channel_request()
        if request is None:
            raise StopAsyncIteration
        return request


# -- making connections -----------------------------------------------------------


async def establish(
    stream: anyio.abc.ByteStream,
    keypair: KeyPair,
    *,
    initiator: bool,
    expected_remote: bytes | None = None,
    config: ConnectionConfig | None = None,
) -> Connection:
    """Run the handshake over any byte stream; the stream is closed if it fails."""
    config = config or ConnectionConfig()
    try:
        handshake = Handshake(
            keypair,
            initiator=initiator,
            expected_remote=expected_remote,
            max_frame=config.max_frame,
            user_data=config.user_data,
        )
        result, leftover = await run_handshake(stream, handshake, config.handshake_timeout)
    except HyphalError as exc:
        logger.warning("handshake with %s failed: %s", peer_name(stream), exc)
        await anyio.aclose_forcefully(stream)
        raise
    except BaseException:
        await anyio.aclose_forcefully(stream)
        raise
    return Connection(stream, result, local_public_key=keypair.public_key, config=config, leftover=leftover)


async def connect(
    host: str,
    port: int,
    keypair: KeyPair,
    *,
    expected_remote: bytes | None = None,
    config: ConnectionConfig | None = None,
    transport: Transport | None = None,
) -> Connection:
    """Dial ``host:port`` over ``transport`` (TCP, IPv4 or IPv6, by default) and
    authenticate; enter the result to run it.

    Raises :class:`HandshakeError` if the handshake fails or times out, or if
    the peer is not ``expected_remote``; ``OSError`` if the dial fails.
    """
    config = config or ConnectionConfig()
    transport = transport or TcpTransport()
    try:
        # One deadline for both steps; the handshake's own (equal) timeout fires later.
        with anyio.fail_after(config.handshake_timeout):
            stream = await transport.dial(host, port)
            return await establish(
                stream, keypair, initiator=True, expected_remote=expected_remote, config=config
            )
    except TimeoutError as exc:
        error = HandshakeError(f"connecting to {format_address((host, port))} timed out")
        logger.warning("%s", error)
        raise error from exc


async def listen(
    host: str,
    port: int,
    keypair: KeyPair,
    handler: ConnectionHandler,
    *,
    config: ConnectionConfig | None = None,
    transport: Transport | None = None,
) -> Listener:
    """Bind ``host:port`` on ``transport`` (TCP by default; ``port`` 0 picks one, see
    :attr:`Listener.port`); serve while entered."""
    config = config or ConnectionConfig()
    transport = transport or TcpTransport()

    async def accept(stream: anyio.abc.ByteStream) -> Connection:
        return await establish(stream, keypair, initiator=False, config=config)

    return Listener(await transport.listen(host, port), accept, handler)


__all__ = [
    "MAX_ID_LEN",
    "Channel",
    "ChannelRequest",
    "Connection",
    "ConnectionConfig",
    "ConnectionHandler",
    "IncomingChannels",
    "Listener",
    "connect",
    "establish",
    "listen",
]
