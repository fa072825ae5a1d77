"""The skeleton every channel-per-peer driver shares: :class:`ChannelDriver`.

A sans-I/O machine (a feed's :class:`~hyphal.replication.replicator.Replicator`,
a blob :class:`~hyphal.blobs.transfer.Download`) decides; its driver opens one
channel per peer connection and does the I/O the machine asks for. The parts
that do not depend on the protocol live here:

- each peer's channel gets an :class:`~hyphal.net.outbox.Outbox` drained by a
  writer task (a slow peer only ever blocks its own channel) and a reader
  task the subclass writes;
- a peer whose channel ends, or that the driver drops, is forgotten once,
  and its channel closed with a reason;
- one timer task calls :meth:`ChannelDriver._on_deadline` at the machine's
  next deadline. The subclass reports deadlines with :meth:`_set_deadline`;
  only an earlier one wakes the timer, because most events only move the
  deadline later (a request answered) and a task switch per message costs.

It lives in ``hyphal.net`` because it is I/O adapter code over
connections and channels, used by protocol packages above it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from types import TracebackType

import anyio

from hyphal.buffers import Parts
from hyphal.lifecycle import TaskOwner
from hyphal.net.channel import Channel
from hyphal.net.connection import Connection
from hyphal.net.outbox import Outbox


@dataclass(eq=False)
class PeerChannel:
    """One peer of a driver: its connection, the protocol's channel on it, and that channel's outbox."""

    id: int
    """The peer id the driver gives its machine."""
    connection: Connection
    channel: Channel
    outbox: Outbox


async def close_channels(channels: list[Channel], reason: str) -> None:
    """Close ``channels`` even while cancelled: a driver that stops closes what it opened.

    The connections outlive their drivers (a group closed on a running node): a channel pair left
    open on one would make attaching the same feed or group there again fail as "already open".
    """
    with anyio.CancelScope(shield=True):
        for channel in channels:
            await channel.aclose(reason)


class ChannelDriver(TaskOwner):
    """Runs a sans-I/O machine over one channel per peer; see the module docstring.

    Subclasses write :meth:`_reader` (the receive loop of one peer) and
    :meth:`_on_deadline`, and may override :meth:`_peer_removed` (a peer's
    channel ended: tell the machine).
    """

    def __init__(self) -> None:
        self._peers: dict[int, PeerChannel] = {}
        self._next_peer = 1
        self._deadline: float | None = None
        self._timer_changed = anyio.Event()
        self.dropped: list[tuple[bytes, str]] = []
        """(remote public key, reason) of every peer this driver dropped, for callers and tests."""

    # -- lifecycle -------------------------------------------------------------------

    def _started(self) -> None:
        self._spawn(self._timer)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._group is not None
        # Taken first: a peer's reader forgets it when cancelled, without closing its channel.
        channels = [peer.channel for peer in self._peers.values()]
        try:
            await self._stopping()
        finally:
            # Always leave the task group, even if stopping failed: one left entered corrupts
            # its task's cancel scopes. The timer runs forever, so cancel first.
            self._group.cancel_scope.cancel()
            try:
                result = await self._group.__aexit__(exc_type, exc, tb)
            finally:
                await close_channels(channels, "stopped")
        return result

    # -- peers ---------------------------------------------------------------------------

    def _add_peer(self, connection: Connection, channel: Channel) -> PeerChannel:
        """Start driving ``channel``: its writer and reader tasks run until it ends."""
        peer = PeerChannel(self._next_peer, connection, channel, Outbox(channel))
        self._next_peer += 1
        self._peers[peer.id] = peer
        self._spawn(self._writer, peer)
        self._spawn(self._reader, peer)
        return peer

    def _peer(self, peer_id: Hashable) -> PeerChannel | None:
        return self._peers.get(peer_id) if isinstance(peer_id, int) else None

    def _send(self, peer_id: Hashable, data: bytes | Parts) -> None:
        """Queue ``data`` for ``peer_id`` (a peer already gone is ignored: the machine learns soon)."""
        peer = self._peer(peer_id)
        if peer is not None:
            peer.outbox.put(data)

    async def _reader(self, peer: PeerChannel) -> None:
        """Receive from ``peer`` until its channel ends, then :meth:`_forget` it."""
        raise NotImplementedError

    async def _writer(self, peer: PeerChannel) -> None:
        await peer.outbox.run()
        self._forget(peer, "channel closed")

    def _forget(self, peer: PeerChannel, reason: str) -> None:
        """``peer``'s channel ended (either task saw it): tell the machine, once."""
        peer.outbox.close()
        if self._peers.pop(peer.id, None) is not None:
            self._peer_removed(peer, reason)

    def _peer_removed(self, peer: PeerChannel, reason: str) -> None:
        """Tell the machine ``peer`` is gone; called once per peer, after it left ``_peers``."""

    def _close(self, peer: PeerChannel, reason: str) -> bool:
        """Close ``peer``'s channel with ``reason`` without telling the machine (it decided this).

        Returns whether the peer was still there.
        """
        present = self._peers.pop(peer.id, None) is not None
        peer.outbox.close()
        if self._group is not None:
            self._group.start_soon(peer.channel.aclose, reason)
        return present

    def _record_drop(self, peer: PeerChannel, reason: str) -> None:
        self.dropped.append((peer.connection.remote_public_key, reason))

    # -- the timer -------------------------------------------------------------------------

    def _set_deadline(self, deadline: float | None) -> None:
        """The machine's next deadline (None: none). Only an earlier one wakes the timer."""
        previous, self._deadline = self._deadline, deadline
        if deadline is not None and (previous is None or deadline < previous):
            self._timer_changed.set()

    def _on_deadline(self) -> None:
        """The deadline passed (it is cleared first): advance the machine's clock."""
        raise NotImplementedError

    async def _timer(self) -> None:
        while True:
            deadline = self._deadline
            if deadline is None:
                await self._timer_changed.wait()
            else:
                with anyio.move_on_after(max(0.0, deadline - anyio.current_time())):
                    await self._timer_changed.wait()
                # The deadline may have moved later meanwhile (without waking us) or gone.
                if self._deadline is not None and anyio.current_time() >= self._deadline:
                    self._deadline = None
                    self._on_deadline()
            if self._timer_changed.is_set():
                self._timer_changed = anyio.Event()


__all__ = ["ChannelDriver", "PeerChannel"]
