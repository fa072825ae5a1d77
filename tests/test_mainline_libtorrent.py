"""hyphal's mainline node against real libtorrent DHT nodes on loopback (BEP 5 and BEP 44).

Each test runs a network of 8 libtorrent sessions (:mod:`mainline_net`) and
adds hyphal nodes that join through them, and shows one interop point
of issue 17 both ways: immutable items, salted mutable items with their
signature and seq, updates (higher seq wins, stale CAS and lower seq
refused), and announces found by libtorrent and by hyphal.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import pytest

from hyphal.errors import SeqConflict
from hyphal.mainline.config import KrpcConfig
from hyphal.mainline.items import MutableItem, mutable_target, signed_payload
from hyphal.mainline.messages import SEQ_TOO_OLD, bencode
from hyphal.mainline.udp import MainlineUdp
from hyphal.signing import KeyPair, verify

lt = pytest.importorskip("libtorrent")
from mainline_net import LtNetwork, LtNode, lt_secret_key  # noqa: E402


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


@contextlib.asynccontextmanager
async def hyphal_node(net: LtNetwork) -> AsyncIterator[MainlineUdp]:
    # Not read-only, so it answers libtorrent's queries too: libtorrent 2.1 adds a node that sent it
    # a `put` to its table even with ro=1, and then waits out a silent node's timeouts (a node that
    # has left is quick: its closed port answers with ICMP).
    config = KrpcConfig(query_timeout=1.0)
    async with MainlineUdp(host="127.0.0.1", routers=net.routers, read_only=False, config=config) as dht:
        assert len(dht.node.table) >= 4, "the hyphal node did not join the libtorrent network"
        yield dht


async def wait_alert(node: LtNode, match: Callable[[Any], bool], timeout: float = 15.0) -> Any:
    return await anyio.to_thread.run_sync(node.wait, match, timeout)


def sha1_bytes(h: Any) -> bytes:
    return bytes(h.to_bytes())


async def lt_get_mutable(node: LtNode, public_key: bytes, salt: bytes) -> Any:
    node.session.dht_get_mutable_item(public_key, salt)
    return await wait_alert(
        node,
        lambda a: (
            isinstance(a, lt.dht_mutable_item_alert)
            and bytes(a.key) == public_key
            and _b(a.salt) == salt
            and a.authoritative
        ),
    )


def _b(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


@pytest.mark.anyio
async def test_immutable_items_both_ways(net: LtNetwork) -> None:
    async with hyphal_node(net) as dht:
        ours = b"an immutable value put by hyphal"
        put = await dht.put_immutable(ours)
        assert put.stored >= 3, put
        reader = net.nodes[5]
        reader.session.dht_get_immutable_item(lt.sha1_hash(put.target))
        alert = await wait_alert(
            reader,
            lambda a: isinstance(a, lt.dht_immutable_item_alert) and sha1_bytes(a.target) == put.target,
        )
        assert _b(alert.item) == ours

        writer = net.nodes[2]
        target = sha1_bytes(writer.session.dht_put_immutable_item(b"an immutable value put by libtorrent"))
        done = await wait_alert(
            writer, lambda a: isinstance(a, lt.dht_put_alert) and sha1_bytes(a.target) == target
        )
        assert done.num_success >= 1
        item = await dht.get_immutable(target)
        assert item is not None
        assert item.value == b"an immutable value put by libtorrent"


@pytest.mark.anyio
async def test_mutable_items_with_salt_both_ways(net: LtNetwork) -> None:
    async with hyphal_node(net) as dht:
        keypair = KeyPair.generate()
        pk = keypair.public_key
        put = await dht.put_mutable(keypair, b"pointer from hyphal", salt=b"hyphal salt")
        assert put.stored >= 3, put
        assert put.seq == 1
        alert = await lt_get_mutable(net.nodes[6], pk, b"hyphal salt")
        assert _b(alert.item) == b"pointer from hyphal"
        assert alert.seq == 1
        signed = signed_payload(b"hyphal salt", 1, bencode(b"pointer from hyphal"))
        assert verify(pk, signed, bytes(alert.signature))

        # libtorrent signs with its own ed25519 code; hyphal gets the item and checks the signature.
        theirs = KeyPair.generate()
        writer = net.nodes[1]
        writer.session.dht_put_mutable_item(
            lt_secret_key(theirs.seed), theirs.public_key, b"from lt", b"lt salt"
        )
        done = await wait_alert(
            writer,
            lambda a: isinstance(a, lt.dht_put_alert) and bytes(a.public_key) == theirs.public_key,
        )
        assert done.num_success >= 1
        assert done.seq == 1
        item = await dht.get_mutable(theirs.public_key, b"lt salt")
        assert item is not None
        assert item.value == b"from lt"
        assert item.seq == 1
        assert item.salt == b"lt salt"
        assert item.target == mutable_target(theirs.public_key, b"lt salt")
        assert dht.node.counters.forged == 0


@pytest.mark.anyio
async def test_updates_higher_seq_wins_stale_cas_and_lower_seq_refused(net: LtNetwork) -> None:
    async with hyphal_node(net) as writer, hyphal_node(net) as reader:
        keypair = KeyPair.generate()
        salt = b"updates"
        first = await writer.put_mutable(keypair, b"version 1", salt=salt)
        assert first.seq == 1
        assert first.stored >= 3
        second = await writer.put_mutable(keypair, b"version 2", salt=salt, cas=1)
        assert second.seq == 2
        assert second.stored >= 3, second

        alert = await lt_get_mutable(net.nodes[3], keypair.public_key, salt)
        assert alert.seq == 2
        assert _b(alert.item) == b"version 2"

        with pytest.raises(SeqConflict):  # a CAS on a seq that is no longer the stored one
            await writer.put_mutable(keypair, b"stale cas", salt=salt, seq=3, cas=1)
        with pytest.raises(SeqConflict):  # a lower seq than stored
            await writer.put_mutable(keypair, b"rolled back", salt=salt, seq=1)

        # Sent anyway (signed before, put as is): the libtorrent nodes holding seq 2 refuse it.
        stale = await writer.put_item(MutableItem.sign(keypair, b"rolled back", 1, salt))
        assert stale.errors.get(SEQ_TOO_OLD, 0) >= 3, stale

        item = await reader.get_mutable(keypair.public_key, salt)
        assert item is not None
        assert item.seq == 2
        assert item.value == b"version 2"
        alert = await lt_get_mutable(net.nodes[7], keypair.public_key, salt)
        assert alert.seq == 2
        assert _b(alert.item) == b"version 2"


@pytest.mark.anyio
async def test_announce_is_found_by_libtorrent_and_by_hyphal(net: LtNetwork) -> None:
    info_hash = bytes(range(20))
    async with hyphal_node(net) as announcer, hyphal_node(net) as finder:
        result = await announcer.announce_peer(info_hash, port=4242)
        assert result.stored >= 3, result

        seeker = net.nodes[4]
        seeker.session.dht_get_peers(lt.sha1_hash(info_hash))

        def has_us(a: Any) -> bool:
            return (
                isinstance(a, lt.dht_get_peers_reply_alert)
                and sha1_bytes(a.info_hash) == info_hash
                and ("127.0.0.1", 4242) in [tuple(p) for p in a.peers()]
            )

        await wait_alert(seeker, has_us)
        found = await finder.get_peers(info_hash)
        assert ("127.0.0.1", 4242) in found.peers
