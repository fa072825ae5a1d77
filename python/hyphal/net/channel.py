"""The channels of a connection, as its users see them, and what they need from it.

A :class:`Channel` is one ``(protocol, id)`` pair of a connection: messages
in order, with the peer's credit bounding what it may send (docs/PROTOCOL.md
§8.3). The state machine behind it is :mod:`hyphal.net.mux`; the connection
(:class:`~hyphal.net.connection.Connection`) drives it and wakes channels
through their ``notify_*`` methods.

A channel reaches its connection only through :class:`ChannelHost`, so this
module does not import the connection's.
"""

from __future__ import annotations

from typing import Protocol, Self

import anyio
import anyio.lowlevel
from typing_extensions import Buffer

from hyphal.buffers import Parts, nbytes, total_size
from hyphal.net.mux import ChannelState, Mux


class ChannelHost(Protocol):
    """What a :class:`Channel` needs from the connection carrying it (which implements it)."""

    def has_send_room(self) -> bool:
        """Whether the connection's send buffer takes another message now."""
        ...

    def notify_when_send_room(self, channel: Channel) -> None:
        """Call ``channel.notify_writable()`` once the send buffer has room again."""
        ...

    def wake_writer(self) -> None:
        """The mux has output (a message, a CREDIT, a CLOSE): have the writer send it."""
        ...

    def channel_closed(self, channel: Channel) -> None:
        """``channel`` was closed on this side: the connection stops handing it events."""
        ...


class Channel:
    """One ``(protocol, id)`` channel of a :class:`~hyphal.net.connection.Connection`.

    :meth:`send` waits for credit from the peer (so a slow reader slows this
    channel's writer only) and for room in the connection's send buffer.
    :meth:`receive` returns messages in order. Once the channel ends,
    :meth:`receive` returns what is buffered and then raises
    ``anyio.EndOfStream`` (the peer closed it or the connection gracefully),
    ``anyio.ClosedResourceError`` (closed here) or ``anyio.BrokenResourceError``
    (the connection failed; ``__cause__`` is the error).
    """

    def __init__(self, host: ChannelHost, mux: Mux, number: int, protocol: str, id: bytes) -> None:  # noqa: A002
        self.protocol = protocol
        self.id = id
        self.number = number
        """This side's number for the channel (see the wire format)."""
        self.close_reason: str | None = None
        self._host = host
        self._mux = mux
        self._readable = anyio.Event()
        self._writable = anyio.Event()
        self._opened = anyio.Event()
        self._receive_end: type[Exception] | None = None
        self._send_end: type[Exception] | None = None
        self._cause: BaseException | None = None
        self._closed_here = False
        self._send_waiters = 0

    def __repr__(self) -> str:
        return f"Channel({self.protocol!r}, {self.id.hex()}, number={self.number})"

    @property
    def is_open(self) -> bool:
        """Paired with the peer and not closed: messages can be sent."""
        return self._send_end is None and self._mux.state(self.number) is ChannelState.OPEN

    @property
    def pending_messages(self) -> int:
        """Messages received and not yet read (bounded by this side's channel window)."""
        return self._mux.pending(self.number)

    @property
    def send_credit(self) -> int:
        """Bytes the peer currently lets this side send (each message costs its size plus 32)."""
        return self._mux.send_credit(self.number)

    @property
    def max_message_size(self) -> int:
        """The largest message :meth:`send` accepts: it fits in one frame and costs at
        most half the peer's window (known once the channel is open)."""
        return self._mux.max_message_for(self.number)

    async def wait_open(self) -> None:
        """Wait until the peer opens the pair too; raises like :meth:`send` if it refuses."""
        while self._mux.state(self.number) is not ChannelState.OPEN:
            self._raise_if_ended(self._send_end)
            await self._opened.wait()
        await anyio.lowlevel.checkpoint()

    async def send(self, message: Buffer | Parts) -> None:
        """Queue one message; waits while the peer's window or the send buffer is full.

        ``message`` may be a list or tuple of buffers, one message in pieces
        (a header and large blocks, say): they are not joined before sealing.

        When neither is full the message is queued without yielding to the event
        loop: bulk senders pay no scheduling round trip per message, and the
        send buffer bounds how long they run before they wait.
        """
        size = total_size(message) if isinstance(message, (list, tuple)) else nbytes(message)
        mux = self._mux
        host = self._host
        if (
            not self._send_waiters
            and self._send_end is None
            and mux.can_send(self.number, size)
            and host.has_send_room()
        ):
            mux.send(self.number, message)
            host.wake_writer()
            return
        mux.check_sendable(self.number, size)
        # Concurrent senders on one channel each wait here; their messages go out
        # in the order they find room, which is all a channel promises them.
        self._send_waiters += 1
        try:
            while True:
                self._raise_if_ended(self._send_end)
                if mux.can_send(self.number, size):
                    if host.has_send_room():
                        break
                    host.notify_when_send_room(self)
                elif mux.state(self.number) is ChannelState.OPEN:
                    # Open, yet the peer's whole window is too small: it would wait forever.
                    mux.check_sendable(self.number, size)
                if self._writable.is_set():
                    self._writable = anyio.Event()
                await self._writable.wait()
            mux.send(self.number, message)
            host.wake_writer()
        finally:
            self._send_waiters -= 1

    async def receive(self) -> bytes:
        """The next message, in order. A buffered message is returned without yielding."""
        return bytes(await self.receive_buffer())

    async def receive_buffer(self) -> bytes | memoryview:
        """:meth:`receive` without a copy: a large message may be a read-only view of its frame."""
        mux = self._mux
        while True:
            data = mux.read(self.number)
            if data is not None:
                if mux.has_output:  # a CREDIT to return
                    self._host.wake_writer()
                return data
            self._raise_if_ended(self._receive_end)
            if self._readable.is_set():
                self._readable = anyio.Event()
            await self._readable.wait()

    async def aclose(self, reason: str = "") -> None:
        """Close the channel; messages already queued are still delivered to the peer."""
        if not self._closed_here:
            self._closed_here = True
            self._mux.close(self.number, reason)
            self._host.channel_closed(self)
            self._host.wake_writer()
            if self.close_reason is None:
                self.close_reason = reason
            self._end(anyio.ClosedResourceError, anyio.ClosedResourceError, None, overwrite=True)
        await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.receive()
        except anyio.EndOfStream:
            raise StopAsyncIteration from None

    # -- driven by the connection (not for users) ----------------------------------

    def notify_readable(self) -> None:
        """A message arrived: wake :meth:`receive`."""
        self._readable.set()

    def notify_writable(self) -> None:
        """Credit or send-buffer room arrived: wake :meth:`send`."""
        self._writable.set()

    def notify_opened(self) -> None:
        """The peer opened the pair too: wake :meth:`wait_open` and :meth:`send`."""
        self._opened.set()
        self._writable.set()

    def notify_closed_by_peer(self, reason: str) -> None:
        """The peer closed the channel with ``reason``."""
        self.close_reason = reason
        self._end(anyio.EndOfStream, anyio.BrokenResourceError, None)

    def notify_connection_closed(
        self,
        receive_end: type[Exception],
        send_end: type[Exception],
        cause: BaseException | None,
        reason: str | None,
    ) -> None:
        """The connection ended: :meth:`receive` and :meth:`send` raise these from now on
        (unless the channel had ended already), with ``reason`` unless it has its own."""
        if self.close_reason is None:
            self.close_reason = reason
        self._end(receive_end, send_end, cause)

    def _raise_if_ended(self, end: type[Exception] | None) -> None:
        if end is not None:
            raise end(self.close_reason or "") from self._cause

    def _end(
        self,
        receive_end: type[Exception],
        send_end: type[Exception],
        cause: BaseException | None,
        *,
        overwrite: bool = False,
    ) -> None:
        if self._receive_end is None or overwrite:
            self._receive_end = receive_end
            self._send_end = send_end
            self._cause = cause
        self._readable.set()
        self._writable.set()
        self._opened.set()


__all__ = ["Channel", "ChannelHost"]
