"""Drives a :class:`Replicator` for one :class:`~hyphal.feed.Feed` over encrypted connections.

The replicator decides; this module does the I/O it asks for. Each attached
connection gets one feed channel ("hyphal/feed/1", id = the discovery key),
a reader task feeding messages in, and a writer task draining that peer's
outbox, so a slow peer only ever blocks its own channel (the skeleton is
:class:`~hyphal.net.driver.ChannelDriver`'s). Storage calls
(proof building, verify-and-store) run inline on the event loop: the Rust
verification releases the GIL and SQLite commits are short.

Usage::

    async with FeedReplication(feed) as replication:
        await replication.attach(connection)        # both sides do this
        await replication.download(0, feed_length)  # or .want(...) for live
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Callable, Iterable

import anyio

from hyphal.errors import HyphalError, InvalidInput
from hyphal.feed.feed import Feed, FeedChange
from hyphal.feed.head import SignedHead
from hyphal.net.connection import Connection
from hyphal.net.driver import ChannelDriver, PeerChannel
from hyphal.net.outbox import CHANNEL_ENDED
from hyphal.replication import PROTOCOL
from hyphal.replication.actions import (
    Action,
    DownloadDone,
    DropPeer,
    ForkDetected,
    Send,
    Serve,
    SetTimer,
    Store,
    VerifyHead,
)
from hyphal.replication.manifest_exchange import PROTOCOL as MANIFEST_PROTOCOL
from hyphal.replication.manifest_exchange import serve_manifest
from hyphal.replication.messages import NoDataReason
from hyphal.replication.replicator import Replicator
from hyphal.replication.state import ReplicatorConfig

log = logging.getLogger("hyphal.replication")


class FeedReplication(ChannelDriver):
    """Replicates one feed with every connection attached to it."""

    def __init__(self, feed: Feed, *, config: ReplicatorConfig | None = None) -> None:
        super().__init__()
        self.feed = feed
        length, fork, head, have, byte_length = self._local_state()
        self._replicator = Replicator(
            feed.key,
            length=length,
            fork=fork,
            head=head,
            have=have,
            byte_length=byte_length,
            config=config,
        )
        self._downloads: dict[int, anyio.Event] = {}
        self._pending: deque[Action] = deque()
        self._running_actions = False
        self._ran = anyio.Event()
        self._applying = False
        self._unsubscribe = feed.on_change(self._on_feed_change)

    # -- lifecycle -------------------------------------------------------------

    async def _stopping(self) -> None:
        self._unsubscribe()
        await super()._stopping()

    # -- public API --------------------------------------------------------------

    @property
    def replicator(self) -> Replicator:
        return self._replicator

    @property
    def peer_count(self) -> int:
        return len(self._peers)

    async def attach(self, connection: Connection) -> None:
        """Open this feed's channel on ``connection`` and replicate over it until either closes."""
        self._require_running()
        # Readers that start from the key alone fetch the manifest first (§10.7).
        manifest_channel = await connection.open_channel(MANIFEST_PROTOCOL, self.feed.discovery_key)
        self._spawn(serve_manifest, connection, manifest_channel, self.feed.key, self.feed.manifest.encode())
        channel = await connection.open_channel(PROTOCOL, self.feed.discovery_key)
        peer = self._add_peer(connection, channel)
        self._run(self._replicator.add_peer(peer.id, connection.handshake_hash, connection.is_initiator))

    def attached_to(self, connection: Connection) -> bool:
        """A feed channel with ``connection``'s peer is running."""
        return any(peer.connection is connection for peer in self._peers.values())

    def want(self, start: int = 0, end: int | None = None) -> None:
        """Follow ``[start, end)`` (``end=None``: everything, live: new heads are fetched as they appear)."""
        self._run(self._replicator.want(start, end))

    def unwant(self, start: int = 0, end: int | None = None) -> None:
        self._run(self._replicator.unwant(start, end))

    def start_download(self, start: int, end: int | None = None) -> int:
        """Begin fetching blocks ``[start, end)``; returns a handle for :meth:`wait` and :meth:`cancel`."""
        handle, actions = self._replicator.download(start, end)
        self._downloads[handle] = anyio.Event()
        self._run(actions)
        return handle

    async def wait(self, handle: int, timeout: float | None = None) -> None:
        """Wait until download ``handle`` holds every block of its range (TimeoutError after ``timeout``)."""
        event = self._downloads.get(handle)
        if event is None:
            raise InvalidInput(f"no download with handle {handle}")
        with anyio.fail_after(math.inf if timeout is None else timeout):
            await event.wait()

    async def download(self, start: int, end: int | None = None, timeout: float | None = None) -> None:
        """Fetch blocks ``[start, end)`` from the attached peers and wait until they are stored."""
        handle = self.start_download(start, end)
        try:
            await self.wait(handle, timeout)
        finally:
            if not self._downloads[handle].is_set():
                self.cancel(handle)
            self._downloads.pop(handle, None)

    async def sync(self, timeout: float | None = None) -> None:
        """Fetch every block up to the longest head the attached peers have.

        Waits until each attached peer's SYNC is in and its head verified (a
        peer that does not hold the feed declines the channel and drops out),
        then downloads up to the longest of their heads. ``TimeoutError`` after ``timeout``.
        """
        with anyio.fail_after(math.inf if timeout is None else timeout):
            while not self._replicator.peers_settled():
                self._ran = anyio.Event()
                await self._ran.wait()
            await self.download(0, max(self.feed.length, self._replicator.remote_length))

    async def settle(self, timeout: float | None = None) -> int:
        """Wait until every attached peer's SYNC is in and its head verified (as :meth:`sync`
        does); returns the longest length known, here or at a peer. ``TimeoutError`` after ``timeout``."""
        with anyio.fail_after(math.inf if timeout is None else timeout):
            while not self._replicator.peers_settled():
                self._ran = anyio.Event()
                await self._ran.wait()
        return max(self.feed.length, self._replicator.remote_length)

    def cancel(self, handle: int) -> None:
        """Stop download ``handle``; requests only it needed are cancelled."""
        self._run(self._replicator.cancel(handle))

    # -- tasks ------------------------------------------------------------------

    async def _reader(self, peer: PeerChannel) -> None:
        try:
            while True:
                # A DATA message stays a view of its frame: its blocks are verified and stored uncopied.
                message = await peer.channel.receive_buffer()
                try:
                    self._run(self._replicator.receive(peer.id, message))
                except Exception:
                    # A bug here must cost one peer, never the node.
                    log.exception("handling a message from %s failed; dropping it", peer.connection)
                    await peer.channel.aclose("internal error")
                    return
        except CHANNEL_ENDED:
            pass
        finally:
            self._forget(peer, "channel closed")

    def _on_deadline(self) -> None:
        self._run([])  # _run ticks first

    def _peer_removed(self, peer: PeerChannel, reason: str) -> None:
        self._run(self._replicator.remove_peer(peer.id))

    # -- actions ------------------------------------------------------------------

    def _run(self, actions: Iterable[Action]) -> None:
        """Perform ``actions`` and everything they lead to, in order, without re-entering."""
        self._pending.extend(self._replicator.tick(anyio.current_time()))
        self._pending.extend(actions)
        if self._running_actions:
            return
        self._running_actions = True
        try:
            while self._pending:
                self._perform(self._pending.popleft())
        finally:
            self._running_actions = False
            self._ran.set()

    def _perform(self, action: Action) -> None:
        if isinstance(action, Send):
            self._send(action.peer_id, action.data)
        elif isinstance(action, Serve):
            self._pending.extend(self._serve(action))
        elif isinstance(action, Store):
            self._pending.extend(self._store(action))
        elif isinstance(action, VerifyHead):
            self._pending.extend(self._verify_head(action))
        elif isinstance(action, ForkDetected):
            self._pending.extend(self._apply_fork(action))
        elif isinstance(action, DropPeer):
            self._drop(action)
        elif isinstance(action, DownloadDone):
            event = self._downloads.get(action.handle)
            if event is not None:
                event.set()
        elif isinstance(action, SetTimer):
            self._set_deadline(action.deadline)
        else:  # pragma: no cover - the action union is closed
            raise AssertionError(f"unknown action {action!r}")

    def _serve(self, action: Serve) -> list[Action]:
        r = self._replicator
        if action.fork != self.feed.fork:
            return r.serve_failed(action.peer_id, action.request_id, NoDataReason.WRONG_FORK)
        try:
            proof, blocks = self.feed.proof(action.length, action.start, action.end, action.upgrade_from)
        except HyphalError as e:
            log.debug("cannot serve %s: %s", action, e)
            return r.serve_failed(action.peer_id, action.request_id, NoDataReason.NOT_AVAILABLE)
        except Exception:
            log.exception("reading storage to serve %s failed", action)
            return r.serve_failed(action.peer_id, action.request_id, NoDataReason.NOT_AVAILABLE)
        return r.served(action.peer_id, action.request_id, proof, blocks)

    def _store(self, action: Store) -> list[Action]:
        feed = self.feed
        if action.fork != feed.fork:
            # We forked meanwhile; the reply is stale, not the peer's fault.
            return self._replicator.data_stored(
                action.peer_id, action.request_id, False, "local fork changed", False
            )
        if action.head:
            # Decoded inside _apply: a malformed head is the peer's fault like any bad data.
            return self._apply(
                action,
                "data",
                lambda: feed.apply_remote(SignedHead.decode(action.head), action.proof, action.blocks),
            )
        return self._apply(action, "data", lambda: feed.apply_proof(action.proof, action.blocks))

    def _apply(self, action: Store | ForkDetected, what: str, apply: Callable[[], object]) -> list[Action]:
        """Verify and store what a peer sent; report to the replicator whose fault a failure was."""
        r = self._replicator
        self._applying = True
        try:
            apply()
        except HyphalError as e:
            log.info("peer %s sent %s that failed verification: %s", self._peer_name(action.peer_id), what, e)
            return r.data_stored(action.peer_id, action.request_id, False, str(e))
        except Exception as e:
            # A local storage failure (disk full, I/O error): not the peer's fault,
            # and it must not take the node down. Nothing was committed.
            log.exception("storing %s from peer %s failed", what, self._peer_name(action.peer_id))
            return r.data_stored(action.peer_id, action.request_id, False, repr(e), peer_at_fault=False)
        finally:
            self._applying = False
        out = r.data_stored(action.peer_id, action.request_id, True)
        out += r.local_changed(*self._local_state())
        return out

    def _verify_head(self, action: VerifyHead) -> list[Action]:
        r = self._replicator
        try:
            head = SignedHead.decode_verified(action.head, self.feed.manifest)
        except HyphalError as e:
            log.info("peer %s sent a head that does not verify: %s", self._peer_name(action.peer_id), e)
            return r.head_verified(action.peer_id, action.head, False, 0, 0)
        return r.head_verified(action.peer_id, action.head, True, head.length, head.fork)

    def _apply_fork(self, action: ForkDetected) -> list[Action]:
        return self._apply(
            action,
            "a fork proof",
            lambda: self.feed.apply_truncation(SignedHead.decode(action.head), action.proof, []),
        )

    def _drop(self, action: DropPeer) -> None:
        peer = self._peer(action.peer_id)
        if peer is None:
            return
        reason = f"{action.reason}: {action.detail}" if action.detail else str(action.reason)
        log.warning(
            "dropping peer %s from feed %s: %s", peer.connection, self.feed.discovery_key.hex()[:16], reason
        )
        self._record_drop(peer, str(action.reason))
        self._close(peer, reason)  # the replicator has forgotten it already

    # -- local state -------------------------------------------------------------

    def _on_feed_change(self, change: FeedChange) -> None:
        # Our own stores report local_changed right after data_stored, in that order.
        if not self._applying:
            self._run(self._replicator.local_changed(*self._local_state()))

    def _local_state(self) -> tuple[int, int, bytes, list[tuple[int, int]], int]:
        feed = self.feed
        length = feed.length
        head = feed.head()
        have: list[tuple[int, int]] = []
        at = 0
        for start, end in feed.missing(0, length) if length else []:
            if start > at:
                have.append((at, start))
            at = end
        if at < length:
            have.append((at, length))
        return length, feed.fork, head.encode() if head is not None else b"", have, feed.byte_length

    def _peer_name(self, peer_id: object) -> str:
        peer = self._peer(peer_id)
        return repr(peer.connection) if peer is not None else str(peer_id)


__all__ = ["PROTOCOL", "FeedReplication"]
