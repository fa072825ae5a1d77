"""Serving blobs on ``hyphal/blob/1`` channels (docs/PROTOCOL.md §12.5).

A requester opens a ``hyphal/blob/1`` channel (any id) and sends HAS and GET
requests; :class:`BlobProvider` answers them in order, streaming each GET's
verified encoding in DATA pieces. A CANCEL drops a queued GET or stops one
mid-stream. Bad input never costs more than its channel:

- a request for a blob or groups this store lacks, an empty or oversized
  range, or a wrong size gets an ERROR reply, and serving goes on;
- a malformed message (unknown type, wrong length) or more than
  ``max_queued`` unanswered requests closes the channel, with a log line.

Usage, in a connection handler::

    provider = BlobProvider(store)
    await provider.serve_connection(connection)    # accepts blob channels, rejects others
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import anyio

from hyphal.blobs import messages as m
from hyphal.blobs.blob_store import BlobStore, group_count
from hyphal.errors import DecodeError, InvalidInput, NotAvailable, VerificationError
from hyphal.net.connection import Channel, ChannelRequest, Connection

log = logging.getLogger("hyphal.blobs")

PROTOCOL = "hyphal/blob/1"
INLINE_GROUPS = 64
"""GETs of up to this many groups (1 MiB) are encoded on the event loop, larger ones on a thread."""
CHANNEL_ENDED = (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError)


@dataclass(frozen=True)
class ProviderConfig:
    piece_size: int = 1024 * 1024
    """Largest DATA payload (capped by what the channel can carry)."""
    max_queued: int = 64
    """Requests a channel may have waiting; one more closes it."""
    max_rate: float | None = None
    """Bytes per second per channel (benchmarks and tests of slow providers); ``None``: no cap."""


class _Pacer:
    """Caps a channel's sending rate (benchmarks only)."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self._next = 0.0

    async def wait(self, n: int) -> None:
        if self.rate is None:
            return
        now = anyio.current_time()
        start = max(now, self._next)
        self._next = start + n / self.rate
        if start > now:
            await anyio.sleep(start - now)


class BlobProvider:
    """Answers blob requests from ``store``; one instance serves any number of channels."""

    def __init__(self, store: BlobStore, config: ProviderConfig | None = None) -> None:
        self.store = store
        self.config = config or ProviderConfig()
        self.on_sent: Callable[[Channel, int], None] | None = None
        """Told each piece of blob data sent, on which channel and how many bytes (for counters)."""

    async def serve_connection(self, connection: Connection) -> None:
        """Serve every ``hyphal/blob/1`` channel the peer opens; reject other protocols."""
        async with anyio.create_task_group() as tg:
            async for request in connection.incoming_channels():
                if not await self.handle_request(request, tg):
                    await request.reject("unknown protocol")

    async def handle_request(self, request: ChannelRequest, tg: anyio.abc.TaskGroup) -> bool:
        """Accept and serve (in ``tg``) a blob channel request; ``False`` for another protocol."""
        if request.protocol != PROTOCOL:
            return False
        channel = await request.accept()
        tg.start_soon(self.serve_channel, channel)
        return True

    async def serve_channel(self, channel: Channel) -> None:
        """Answer requests on ``channel`` until it ends."""
        queue = _Queue()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._worker, channel, queue)
                await self._read_requests(channel, queue)
                tg.cancel_scope.cancel()
        finally:
            await channel.aclose()

    async def _read_requests(self, channel: Channel, queue: _Queue) -> None:
        try:
            async for message in channel:
                try:
                    request = m.decode_request(message)
                except DecodeError as e:
                    log.warning("%r: malformed blob request: %s; closing", channel, e)
                    await channel.aclose("malformed request")
                    return
                if isinstance(request, m.Cancel):
                    queue.cancel(request.id)
                elif len(queue.items) >= self.config.max_queued:
                    log.warning("%r: more than %d queued blob requests; closing", channel, len(queue.items))
                    await channel.aclose("too many requests")
                    return
                else:
                    queue.put(request)
        except CHANNEL_ENDED:
            pass

    async def _worker(self, channel: Channel, queue: _Queue) -> None:
        pacer = _Pacer(self.config.max_rate)
        try:
            while True:
                request = await queue.get()
                if isinstance(request, m.Has):
                    await channel.send(self._have(request))
                else:
                    queue.current = request.id
                    await self._get(channel, request, queue.cancelled, pacer)
                    queue.current = None
                    queue.cancelled.discard(request.id)
        except CHANNEL_ENDED:
            pass

    def _have(self, request: m.Has) -> bytes:
        bits = self.store.bits(request.hash)
        info = self.store.info(request.hash)
        if bits is None or info is None:
            return m.encode_have(request.id, m.HaveState.ABSENT, 0)
        if bits.complete:
            return m.encode_have(request.id, m.HaveState.COMPLETE, info.size)
        raw = bits.to_bytes()
        if len(raw) > m.MAX_BITFIELD:
            return m.encode_error(request.id, m.ErrorCode.INTERNAL, "bitfield too large to send")
        return m.encode_have(request.id, m.HaveState.PARTIAL, info.size, raw)

    async def _get(self, channel: Channel, request: m.Get, cancelled: set[int], pacer: _Pacer) -> None:
        try:
            if request.end - request.start > INLINE_GROUPS:
                # A big range: read and verify it off the event loop, which keeps serving.
                encoded = await anyio.to_thread.run_sync(self._encode, request)
            else:
                encoded = self._encode(request)
        except _Refused as e:
            log.info("%r: blob request %d refused: %s", channel, request.id, e.text)
            await channel.send(m.encode_error(request.id, e.code, e.text))
            return
        piece = max(1, min(self.config.piece_size, channel.max_message_size - m.DATA_HEADER))
        view = memoryview(encoded)
        at = 0
        while True:
            chunk = view[at : at + piece]
            at += len(chunk)
            last = at >= len(view)
            await pacer.wait(len(chunk))
            await channel.send([m.data_header(request.id, last), chunk])  # pieces: never joined
            if self.on_sent is not None:
                self.on_sent(channel, len(chunk))
            if last:
                return
            if request.id in cancelled:
                cancelled.discard(request.id)
                return

    def _encode(self, request: m.Get) -> bytes:
        info = self.store.info(request.hash)
        if info is None:
            raise _Refused(m.ErrorCode.NOT_FOUND, "blob not here")
        n = group_count(info.size)
        if request.size != info.size:
            raise _Refused(m.ErrorCode.BAD_REQUEST, f"blob size is {info.size}, not {request.size}")
        if not 0 <= request.start < request.end <= n or request.end - request.start > m.MAX_GET_GROUPS:
            raise _Refused(
                m.ErrorCode.BAD_REQUEST,
                f"range [{request.start}, {request.end}) is empty, outside {n} groups"
                f" or over {m.MAX_GET_GROUPS}",
            )
        try:
            return self.store.encode_range(request.hash, request.start, request.end)
        except NotAvailable as e:
            raise _Refused(m.ErrorCode.NOT_AVAILABLE, str(e)) from None
        except InvalidInput as e:
            raise _Refused(m.ErrorCode.BAD_REQUEST, str(e)) from None
        except (VerificationError, DecodeError, OSError) as e:
            log.error("blob %s: stored copy failed verification: %s", request.hash.hex(), e)
            raise _Refused(m.ErrorCode.INTERNAL, "stored copy failed verification") from None


class _Queue:
    """Requests of one channel waiting for the worker, and the ids cancelled meanwhile."""

    def __init__(self) -> None:
        self.items: deque[m.Has | m.Get] = deque()
        self.cancelled: set[int] = set()
        self.current: int | None = None
        """The GET being answered."""
        self._wake = anyio.Event()

    def put(self, request: m.Has | m.Get) -> None:
        self.items.append(request)
        self._wake.set()

    def cancel(self, id: int) -> None:  # noqa: A002
        # Only ids queued or being answered: cancels of answered ids must not pile up.
        if id == self.current or any(r.id == id for r in self.items):
            self.cancelled.add(id)

    async def get(self) -> m.Has | m.Get:
        while True:
            while not self.items:
                self._wake = anyio.Event()
                await self._wake.wait()
            request = self.items.popleft()
            if request.id in self.cancelled:
                self.cancelled.discard(request.id)
                continue
            return request


class _Refused(Exception):
    def __init__(self, code: m.ErrorCode, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


__all__ = ["PROTOCOL", "BlobProvider", "ProviderConfig"]
