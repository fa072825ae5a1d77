"""One channel per attached connection, all for the same ``(protocol, id)``.

The shape shared by the small replication protocols (signed values, group
membership): each attached connection gets a :class:`Subscriber` (its
channel and an :class:`Outbox`), a reader task that hands every message to
:meth:`Fanout._on_message`, and a writer task. A subscriber that sends bad
input is dropped: logged, recorded in :attr:`Fanout.dropped`, its channel
closed. Nothing here knows what the messages mean.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from types import TracebackType

from hyphal.lifecycle import TaskOwner
from hyphal.net.connection import Channel, Connection
from hyphal.net.driver import close_channels
from hyphal.net.outbox import CHANNEL_ENDED, Outbox
from hyphal.notifier import Notifier

log = logging.getLogger("hyphal.replication")


@dataclass(eq=False)
class Subscriber:
    connection: Connection
    channel: Channel
    outbox: Outbox


class Fanout(TaskOwner):
    """Runs the ``(protocol, channel_id)`` channel on every attached connection."""

    def __init__(self, protocol: str, channel_id: bytes) -> None:
        self.protocol = protocol
        self.channel_id = channel_id
        self.subscribers: list[Subscriber] = []
        self.dropped: list[tuple[bytes, str]] = []
        """(remote public key, reason) of every subscriber dropped for bad input."""
        self.drops: Notifier[tuple[bytes, str]] = Notifier()

    @property
    def subscriber_count(self) -> int:
        return len(self.subscribers)

    async def attach(self, connection: Connection) -> Subscriber:
        """Open the channel on ``connection`` and run it until either side closes it."""
        self._require_running()
        channel = await connection.open_channel(self.protocol, self.channel_id)
        sub = Subscriber(connection, channel, Outbox(channel))
        self.subscribers.append(sub)
        self._opened(sub)
        self._spawn(self._writer, sub)
        self._spawn(self._reader, sub)
        return sub

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        # Taken first: a subscriber's reader forgets it when cancelled, without closing its channel.
        channels = [sub.channel for sub in self.subscribers]
        try:
            return await super().__aexit__(exc_type, exc, tb)
        finally:
            await close_channels(channels, "stopped")

    def attached_to(self, connection: Connection) -> bool:
        """The channel runs on ``connection`` now."""
        return any(sub.connection is connection for sub in self.subscribers)

    def broadcast(self, message: bytes, *, skip: Subscriber | None = None) -> None:
        for sub in self.subscribers:
            if sub is not skip:
                sub.outbox.put(message)

    # -- for subclasses ------------------------------------------------------------

    def _opened(self, sub: Subscriber) -> None:
        """The channel to ``sub`` is open: queue what it should get first."""

    def _on_message(self, sub: Subscriber, data: bytes) -> None:
        """One message from ``sub``; call :meth:`_drop` for bad input."""
        raise NotImplementedError

    def _forgotten(self, sub: Subscriber) -> None:
        """``sub`` is gone (closed, dropped or the connection ended)."""

    # -- the tasks -------------------------------------------------------------------

    async def _reader(self, sub: Subscriber) -> None:
        try:
            async for data in sub.channel:
                if sub not in self.subscribers:
                    return  # dropped by the previous message
                self._on_message(sub, data)
        except CHANNEL_ENDED:
            pass
        finally:
            self._forget(sub)

    async def _writer(self, sub: Subscriber) -> None:
        await sub.outbox.run()
        self._forget(sub)

    def _drop(self, sub: Subscriber, reason: str) -> None:
        log.warning("dropping %s subscriber %s: %s", self.protocol, sub.connection, reason)
        self.dropped.append((sub.connection.remote_public_key, reason))
        self.drops.notify(self.dropped[-1])
        self._forget(sub)
        self._spawn(sub.channel.aclose, reason)

    def _forget(self, sub: Subscriber) -> None:
        sub.outbox.close()
        if sub in self.subscribers:
            self.subscribers.remove(sub)
            self._forgotten(sub)


__all__ = ["Fanout", "Subscriber"]
