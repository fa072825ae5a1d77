"""Every feed a node replicates, on every connection it has.

:class:`FeedService` runs one :class:`~hyphal.replication.driver.FeedReplication`
per feed and attaches it to each connection it is told about, from either
end: :meth:`FeedService.connected` attaches this node's feeds to a new
connection, and :meth:`FeedService.handle` (registered with a
:class:`~hyphal.net.router.ChannelRouter` for the feed and manifest
protocols) answers a peer that attached first. A channel for a discovery key
this node does not hold is declined, so the peer learns nothing else.
"""

from __future__ import annotations

import anyio
import anyio.abc

from hyphal.feed import Feed
from hyphal.lifecycle import TaskOwner
from hyphal.net.connection import ChannelRequest, Connection
from hyphal.replication import PROTOCOL
from hyphal.replication.driver import FeedReplication
from hyphal.replication.manifest_exchange import PROTOCOL as MANIFEST_PROTOCOL
from hyphal.replication.state import ReplicatorConfig

PROTOCOLS = (PROTOCOL, MANIFEST_PROTOCOL)
"""What to route to :meth:`FeedService.handle`."""


class FeedService(TaskOwner):
    def __init__(self, config: ReplicatorConfig | None = None) -> None:
        self._config = config
        self._replications: dict[bytes, FeedReplication] = {}
        self._scopes: dict[bytes, anyio.CancelScope] = {}
        self._stopped: dict[bytes, anyio.Event] = {}
        # A dict for its order: attaching walks it, and a set of id()-hashed connections would
        # attach in memory-address order (a simulation's replay must not depend on that).
        self._connections: dict[Connection, None] = {}
        # (discovery key, connection) -> set once the feed is attached there (or failed to).
        self._attached: dict[tuple[bytes, Connection], anyio.Event] = {}

    def get(self, discovery_key: bytes) -> FeedReplication | None:
        return self._replications.get(discovery_key)

    async def add(self, feed: Feed) -> FeedReplication:
        """Replicate ``feed`` from now on, on every connection (those open now included)."""
        found = self._replications.get(feed.discovery_key)
        if found is not None:
            return found
        replication = FeedReplication(feed, config=self._config)
        await self._require_running().start(self._run, replication)
        self._replications[feed.discovery_key] = replication
        for connection in list(self._connections):
            await self._attach(replication, connection)
        return replication

    async def remove(self, discovery_key: bytes) -> None:
        """Stop replicating a feed (its channels close; its data stays in storage).

        Returns once its channels are closed, so adding the feed again at once (a group closed
        and opened) opens fresh channels instead of finding the old pairs still open."""
        self._replications.pop(discovery_key, None)
        scope = self._scopes.pop(discovery_key, None)
        stopped = self._stopped.pop(discovery_key, None)
        if scope is not None:
            scope.cancel()
        for key in [k for k in self._attached if k[0] == discovery_key]:
            del self._attached[key]
        if stopped is not None:
            await stopped.wait()

    async def connected(self, connection: Connection) -> None:
        """A new connection: attach every feed to it, and forget it when it closes.
        (Again for a connection it knows: attaches what is not attached yet.)"""
        if connection not in self._connections:
            self._connections[connection] = None
            self._spawn(self._forget_when_closed, connection)
        for replication in list(self._replications.values()):
            await self._attach(replication, connection)

    async def handle(self, request: ChannelRequest) -> bool:
        """A peer opened a feed or manifest channel: attach that feed if we hold it."""
        replication = self._replications.get(request.id)
        if replication is None:
            return False
        await self._attach(replication, request.connection)
        return True

    async def _attach(self, replication: FeedReplication, connection: Connection) -> None:
        # Both channels of a feed are opened by one attach, whichever request or call comes
        # first; the others wait for it.
        key = (replication.feed.discovery_key, connection)
        done = self._attached.get(key)
        if done is not None:
            await done.wait()
            if replication.attached_to(connection):
                return
            # Attached once, but that channel has ended (the peer declined it before it
            # held the feed, say): the peer asking now gets a fresh attach.
            if self._attached.get(key) is not done:
                return await self._attach(replication, connection)
        done = self._attached[key] = anyio.Event()
        try:
            await replication.attach(connection)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # the connection is closing (a duplicate, say): nothing to replicate over
        finally:
            done.set()

    async def _run(self, replication: FeedReplication, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        stopped = self._stopped[replication.feed.discovery_key] = anyio.Event()
        try:
            with anyio.CancelScope() as scope:
                self._scopes[replication.feed.discovery_key] = scope
                async with replication:
                    task_status.started()
                    await anyio.sleep_forever()
        finally:
            stopped.set()

    async def _forget_when_closed(self, connection: Connection) -> None:
        await connection.closed.wait()
        self._connections.pop(connection, None)
        for key in [k for k in self._attached if k[1] is connection]:
            del self._attached[key]


__all__ = ["PROTOCOLS", "FeedService"]
