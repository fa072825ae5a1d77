"""The node's mainline bridge: two hyphal nodes with no hyphal seed in common meet through libtorrent.

Both nodes turn ``[mainline]`` on with the loopback libtorrent network as
their routers and no hyphal bootstrap at all. The reader opens the writer's
feed by its key alone: the writer announced the feed's mainline info-hash,
the reader finds it there, dials, and replicates with proofs as usual. Both
also find each other at the rendezvous info-hash and join one hyphal DHT,
and each resolves the other's signed address pointer (a BEP 44 item that
libtorrent serves too).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from hyphal.config import NodeConfig
from hyphal.errors import InvalidInput, MissingExtra
from hyphal.feed.share import FeedShare
from hyphal.mainline.config import MainlineConfig
from hyphal.mainline.records import ADDRESSES_SALT, AddressRecord, info_hash_for
from hyphal.node import Node

lt = pytest.importorskip("libtorrent")
from mainline_net import LtNetwork  # noqa: E402

WAIT = 45.0


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def net() -> Iterator[LtNetwork]:
    # A fresh network per test: libtorrent keeps a node that has left in its tables and waits out
    # its timeouts in later lookups.
    network = LtNetwork(8)
    try:
        network.wait_ready(min_nodes=4)
        yield network
    finally:
        network.close()


def test_the_mainline_section_loads_and_is_off_by_default(tmp_path: Path) -> None:
    assert NodeConfig().mainline.enabled is False
    assert "router.bittorrent.com:6881" in NodeConfig().mainline.bootstrap
    path = tmp_path / "config.toml"
    path.write_text('[mainline]\nenabled = true\nbootstrap = ["10.0.0.1:6881"]\nread_only = false\n')
    config = NodeConfig.load(path)
    assert config.mainline == MainlineConfig(enabled=True, bootstrap=("10.0.0.1:6881",), read_only=False)
    path.write_text("[mainline]\npublish_interval = 9000\n")
    with pytest.raises(InvalidInput, match=r"mainline\.publish_interval"):
        NodeConfig.load(path)


def test_info_hashes_are_domain_separated_truncations() -> None:
    key = bytes(range(32))
    assert len(info_hash_for(key)) == 20
    assert info_hash_for(key) != info_hash_for(bytes(32))
    assert info_hash_for(key) != key[:20]


@pytest.mark.anyio
async def test_nodes_without_a_common_seed_meet_on_mainline_and_replicate_a_feed(
    net: LtNetwork, tmp_path: Path
) -> None:
    # Answering (not BEP 43 read-only): libtorrent 2.1 adds nodes that put to it even when they
    # say ro=1, and would wait out a silent node's timeouts in its lookups.
    config = MainlineConfig(
        enabled=True, bootstrap=tuple(net.routers), announce_interval=2.0, read_only=False
    )
    with anyio.fail_after(WAIT):
        async with (
            Node(tmp_path / "w", listen="127.0.0.2:0", mainline=config) as writer,
            Node(tmp_path / "r", listen="127.0.0.3:0", mainline=config) as reader,
        ):
            assert writer.mainline is not None
            assert reader.mainline is not None
            assert writer.config.bootstrap == reader.config.bootstrap == ()  # no hyphal seed at all
            await writer.mainline.joined.wait()
            await reader.mainline.joined.wait()

            notes = await writer.shared_feeds.create(name="notes")
            notes.feed.append_batch([b"found", b"through mainline"])
            copy = await reader.shared_feeds.open(FeedShare(notes.feed.key), timeout=30.0)
            copy.start_download(0, None)
            assert await copy.feed.get(1) == b"through mainline"
            # The feed's own info-hash on mainline names the writer (the finder FeedDiscovery asks
            # when the hyphal DHT knows nobody).
            peers = await reader.mainline.find_feed_peers(notes.feed.discovery_key)
            assert writer.advertised_addresses()[0] in peers

            # The rendezvous: each node's hyphal DHT now knows the other, with no seed configured.
            await reader.mainline.hyphal_joined.wait()
            await writer.mainline.hyphal_joined.wait()
            assert writer.dht.node.id in reader.dht.node.table
            # and the writer's announce, put while it was alone, was put again on joining
            found = await reader.dht.lookup(notes.feed.discovery_key)
            assert writer.public_key in [a.public_key for a in found.announces]

            # The signed address pointer, resolved by hyphal and served by libtorrent alike.
            await writer.mainline.publish_addresses()
            assert await reader.mainline.resolve_addresses(writer.public_key) == writer.advertised_addresses()
            seeker = net.nodes[0]
            seeker.session.dht_get_mutable_item(writer.public_key, ADDRESSES_SALT)
            alert = await anyio.to_thread.run_sync(
                seeker.wait,
                lambda a: (
                    isinstance(a, lt.dht_mutable_item_alert)
                    and bytes(a.key) == writer.public_key
                    and a.authoritative
                ),
                15.0,
            )
            assert alert.seq > 0
            assert AddressRecord.decode(alert.item).addresses == tuple(writer.advertised_addresses())


@pytest.mark.anyio
async def test_a_node_with_mainline_on_but_the_extra_missing_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "fastbencode", None)  # as if the package were not installed
    with pytest.raises(MissingExtra, match=r"hyphal\[mainline\]"):
        async with Node(tmp_path, listen="127.0.0.4:0", mainline=MainlineConfig(enabled=True, bootstrap=())):
            pass
    async with Node(tmp_path, listen="127.0.0.4:0") as node:  # off: nothing of it is needed
        assert node.mainline is None


@pytest.mark.anyio
async def test_with_the_hyphal_dhts_apart_the_feed_is_found_by_its_mainline_info_hash(
    net: LtNetwork, tmp_path: Path
) -> None:
    config = MainlineConfig(
        enabled=True, bootstrap=tuple(net.routers), read_only=False, bootstrap_hyphal=False
    )
    with anyio.fail_after(WAIT):
        async with (
            Node(tmp_path / "w", listen="127.0.0.5:0", mainline=config) as writer,
            Node(tmp_path / "r", listen="127.0.0.6:0", mainline=config) as reader,
        ):
            assert writer.mainline is not None
            assert reader.mainline is not None
            await writer.mainline.joined.wait()
            await reader.mainline.joined.wait()
            notes = await writer.shared_feeds.create(name="notes")
            notes.feed.append(b"by info-hash")
            copy = await reader.shared_feeds.open(FeedShare(notes.feed.key), timeout=30.0)
            copy.start_download(0, None)
            assert await copy.feed.get(0) == b"by info-hash"
            # Only the mainline finder could have named the writer: the hyphal DHTs never met.
            assert writer.dht.node.id not in reader.dht.node.table
