"""A per-channel send queue drained by its own task, shared by the drivers of every protocol.

Drivers decide what to send synchronously (from state-machine actions or
change callbacks) but sending waits for the peer's credit. Queuing here and
draining in one task per channel means a slow peer only ever blocks its own
channel, never the driver.
"""

from __future__ import annotations

import logging
from collections import deque

import anyio

from hyphal.buffers import Parts, total_size
from hyphal.net.channel import Channel

log = logging.getLogger("hyphal.net")

CHANNEL_ENDED = (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError)
"""What a channel raises once it has ended, for whatever reason."""


class Outbox:
    """Messages waiting to go out on ``channel``; :meth:`run` sends them in order."""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.closed = False
        self._queue: deque[bytes | Parts] = deque()
        self._wake = anyio.Event()
        self._sending = False
        self._idle = anyio.Event()

    def put(self, message: bytes | Parts) -> None:
        if not self.closed:
            self._queue.append(message)
            self._wake.set()

    def close(self) -> None:
        """Stop :meth:`run` after the message it is sending; the rest are discarded."""
        self.closed = True
        self._wake.set()
        self._idle.set()

    async def drained(self) -> None:
        """Wait until every message queued so far has gone out (or the outbox closed)."""
        while not self.closed and (self._queue or self._sending):
            self._idle = anyio.Event()
            await self._idle.wait()

    async def run(self) -> None:
        """Send until :meth:`close` or the channel ends (then :attr:`closed` is set too)."""
        try:
            while not self.closed:
                if not self._queue:
                    self._wake = anyio.Event()
                    await self._wake.wait()
                    continue
                message = self._queue.popleft()
                size = len(message) if isinstance(message, bytes) else total_size(message)
                if size > self.channel.max_message_size:
                    # The peer's frames are smaller than this message: it can never go out.
                    log.warning("%r cannot take a %d-byte message; closing it", self.channel, size)
                    await self.channel.aclose("frame limit too small")
                    return
                self._sending = True
                try:
                    await self.channel.send(message)
                finally:
                    self._sending = False
                if not self._queue:
                    self._idle.set()
        except CHANNEL_ENDED:
            pass
        finally:
            self.closed = True
            self._idle.set()


__all__ = ["CHANNEL_ENDED", "Outbox"]
