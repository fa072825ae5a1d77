"""FeedService and ChannelRouter over TCP: feeds attach from either end; unknown feeds are declined."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from hyphal.feed import Feed
from hyphal.net.connection import Connection, connect, listen
from hyphal.net.router import ChannelRouter
from hyphal.replication.service import PROTOCOLS, FeedService
from hyphal.signing import KeyPair
from hyphal.storage.sqlite import SqliteStorage

pytestmark = pytest.mark.anyio
WAIT = 10.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def node() -> tuple[ChannelRouter, FeedService]:
    router, service = ChannelRouter(), FeedService()
    for protocol in PROTOCOLS:
        router.route(protocol, service.handle)
    return router, service


async def test_feeds_replicate_between_services_and_unknown_feeds_are_declined(tmp_path: Path) -> None:
    with (
        SqliteStorage(tmp_path / "a.db") as a_store,
        SqliteStorage(tmp_path / "b.db") as b_store,
        SqliteStorage(tmp_path / "c.db") as c_store,
    ):
        writer = Feed.create(a_store, KeyPair.generate())
        writer.append_batch([b"one", b"two"])
        elsewhere = Feed.create(c_store, KeyPair.generate())  # a feed A does not hold
        a_router, a_feeds = node()
        b_router, b_feeds = node()

        async def on_connection(conn: Connection) -> None:
            await a_feeds.connected(conn)
            await a_router.serve(conn)

        async with a_router, a_feeds, b_router, b_feeds:
            await a_feeds.add(writer)
            async with await listen("127.0.0.1", 0, KeyPair.generate(), on_connection) as server:
                with anyio.fail_after(WAIT):
                    conn = await connect("127.0.0.1", server.port, KeyPair.generate())
                    async with conn, anyio.create_task_group() as tg:
                        tg.start_soon(b_router.serve, conn)
                        await b_feeds.connected(conn)
                        # Added after the connection: attached to it at once.
                        copy = await b_feeds.add(Feed.open(b_store, writer.key, manifest=writer.manifest))
                        await b_feeds.add(Feed.open(b_store, elsewhere.key, manifest=elsewhere.manifest))
                        copy.start_download(0, None)
                        assert await copy.feed.get(1) == b"two"
                        writer.append(b"three")  # live
                        assert await copy.feed.get(2) == b"three"
                        while a_router.rejected.get("not available here", 0) < 2:
                            await a_router.rejections.wait()
                        # Removed: it is forgotten, and its channels are closed when remove returns.
                        channels = [p.channel for p in copy._peers.values()]
                        await b_feeds.remove(copy.feed.discovery_key)
                        assert b_feeds.get(copy.feed.discovery_key) is None
                        assert copy.peer_count == 0
                        assert channels
                        assert all(c.close_reason == "stopped" for c in channels)
                        tg.cancel_scope.cancel()
        assert a_feeds.get(writer.discovery_key) is not None
        assert a_feeds.get(elsewhere.discovery_key) is None
