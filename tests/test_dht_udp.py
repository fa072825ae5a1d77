"""The DHT on real UDP sockets on 127.0.0.1: a few dozen nodes in one process."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path

import anyio
import pytest

from hyphal.dht import DhtConfig
from hyphal.dht.records import NodeRecord
from hyphal.dht.routing import RoutingTable
from hyphal.dht.udp import UdpDht
from hyphal.errors import InvalidInput, SeqConflict
from hyphal.signing import KeyPair

NODES = 30
# Every node shares 127.0.0.1, so the per-IP rate limit must allow the whole swarm.
CONFIG = DhtConfig(k=8, rate=1e6, burst=1e6, min_timeout=0.05, initial_timeout=0.5)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _keypair(i: int) -> KeyPair:
    return KeyPair(bytes([i + 1]) * 32)


@contextlib.asynccontextmanager
async def swarm(count: int, tmp_path: Path):  # type: ignore[no-untyped-def]
    async with contextlib.AsyncExitStack() as stack:
        first = await stack.enter_async_context(UdpDht(_keypair(0), config=CONFIG))
        nodes = [first]
        for i in range(1, count):
            seeds = [nodes[j].address for j in range(max(0, i - 3), i)]
            dht = UdpDht(_keypair(i), seeds=seeds, config=CONFIG, state_path=tmp_path / f"table{i}")
            nodes.append(await stack.enter_async_context(dht))
        yield nodes


@pytest.mark.anyio
async def test_udp_swarm_lookups_and_records(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with swarm(NODES, tmp_path) as nodes:
            assert all(len(n.node.table) > 0 for n in nodes)
            # Every node finds every other node's id as the closest answer.
            for i in range(0, NODES, 5):
                target = nodes[(i * 7 + 3) % NODES]
                result = await nodes[i].find_node(target.node.id)
                assert result.closest[0].id == target.node.id

            # Mutable records: put from one node, get the highest seq from another.
            owner = KeyPair(b"\x77" * 32)
            put = await nodes[3].put_mutable(owner, b"v1", salt=b"s")
            assert put.stored >= 1
            assert put.seq == 1
            put = await nodes[4].put_mutable(owner, b"v2", salt=b"s", cas=1)
            assert put.seq == 2
            got = await nodes[20].get_mutable(owner.public_key, b"s")
            assert got.signed_value is not None
            assert got.signed_value.value == b"v2"

            # Immutable records and announces.
            stored = await nodes[5].put_immutable(b"hello dht")
            assert stored.stored >= 1
            assert await nodes[25].get_immutable(stored.key) == b"hello dht"
            peer = KeyPair(b"\x42" * 32)
            topic = b"\x09" * 32
            await nodes[6].announce(peer, topic, [("192.0.2.7", 4000)])
            found = await nodes[27].lookup(topic)
            assert [a.public_key for a in found.announces] == [peer.public_key]
            assert found.announces[0].addresses == (("192.0.2.7", 4000),)
            assert all(n.node.counters.malformed == 0 and n.node.counters.forged == 0 for n in nodes)


@pytest.mark.anyio
async def test_udp_restart_bootstraps_from_saved_table(tmp_path: Path) -> None:
    with anyio.fail_after(30):
        async with swarm(8, tmp_path) as nodes:
            last = nodes[-1]
            saved = RoutingTable.decode_records((tmp_path / "table7").read_bytes())
            assert saved
            assert all(isinstance(r, NodeRecord) for r in saved)
            # Restart node 7 with no seeds: the saved table alone brings it back.
            await last.__aexit__(None, None, None)
            again = UdpDht(_keypair(7), config=CONFIG, state_path=tmp_path / "table7")
            async with again:
                assert len(again.node.table) > 0
                result = await again.find_node(nodes[2].node.id)
                assert result.closest[0].id == nodes[2].node.id
            nodes.pop()


@pytest.mark.anyio
async def test_udp_garbage_is_counted_not_fatal() -> None:
    with anyio.fail_after(10):
        async with UdpDht(_keypair(0), config=CONFIG) as a, UdpDht(_keypair(1), config=CONFIG) as b:
            async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock:
                host, port = a.address
                for junk in (b"\x01", b"\x01\x01\x01" + b"\xff" * 40, b"x" * 9000):
                    await sock.sendto(junk, host, port)
                pong = await b.ping(a.address)
                assert pong is not None
            counters = a.node.counters
            assert (counters.malformed, counters.oversized) == (2, 1)


class _FullBuffer:
    """A socket whose first sends find the kernel's send buffer full."""

    def __init__(self, sock: socket.socket, full: int) -> None:
        self.sock = sock
        self.full = full

    def sendto(self, data: bytes, addr: tuple[str, int]) -> int:
        if self.full:
            self.full -= 1
            raise BlockingIOError
        return self.sock.sendto(data, addr)

    def fileno(self) -> int:
        return self.sock.fileno()

    def __getattr__(self, name: str) -> object:
        return getattr(self.sock, name)


@pytest.mark.anyio
async def test_udp_send_waits_out_a_full_buffer_from_several_tasks() -> None:
    with anyio.fail_after(10):
        async with UdpDht(_keypair(0), config=CONFIG) as a, UdpDht(_keypair(1), config=CONFIG) as b:
            assert a._sock is not None
            full = _FullBuffer(a._sock, 3)
            a._sock = full  # type: ignore[assignment]
            pongs: list[object] = []

            async def ping() -> None:
                pongs.append(await a.ping(b.address))

            async with anyio.create_task_group() as tg:  # two tasks flush while the buffer is full
                tg.start_soon(ping)
                tg.start_soon(ping)
            assert full.full == 0
            assert len(pongs) == 2
            assert all(p is not None for p in pongs)
            a._sock = full.sock


@pytest.mark.anyio
async def test_udp_gets_survive_silent_nodes(tmp_path: Path) -> None:
    with anyio.fail_after(60):
        async with swarm(24, tmp_path) as nodes:
            stored = await nodes[1].put_immutable(b"still here")
            assert stored.stored == CONFIG.k
            for dead in nodes[8:16]:
                dead.stop()
            for reader in (nodes[2], nodes[20], nodes[23]):
                assert await reader.get_immutable(stored.key) == b"still here"
            # A lookup of a dead node's id meets the dead: they time out and stay out of the answer.
            result = await nodes[3].find_node(nodes[10].node.id)
            dead = {n.node.id for n in nodes[8:16]}
            assert result.timeouts > 0
            assert result.closest
            assert not dead & {r.id for r in result.closest}


@pytest.mark.anyio
async def test_udp_wildcard_bind_needs_addresses() -> None:
    with pytest.raises(InvalidInput):
        async with UdpDht(_keypair(0), host="0.0.0.0", config=CONFIG):
            pass
    async with UdpDht(_keypair(0), host="0.0.0.0", addresses=[("127.0.0.1", 7999)], config=CONFIG) as d:
        assert d.address == ("127.0.0.1", 7999)


@pytest.mark.anyio
async def test_udp_secret_store(tmp_path: Path) -> None:
    import time

    from hyphal.secrets import SecretStore

    owner = KeyPair(b"\x61" * 32)
    with anyio.fail_after(30):
        async with swarm(12, tmp_path) as nodes:
            stores = [SecretStore(n.node, now=time.time()) for n in nodes]
            version = await nodes[2].run(
                lambda n, now: stores[2].put(now, owner, "https://x.example", b"tok")
            )
            assert version > 0
            got = await nodes[9].run(
                lambda n, now: stores[9].get(now, owner, owner.public_key, "https://x.example")
            )
            assert got == b"tok"
            with anyio.fail_after(5):
                while sum(1 for s in stores if s.held) < 5:
                    await anyio.wait_all_tasks_blocked()


@pytest.mark.anyio
async def test_two_nodes_the_holder_gets_what_it_holds() -> None:
    """In a two-node DHT a put lands only on the other node (a lookup never asks itself): that
    holder's get must read its own store, and a mutable get still keeps the highest seq."""
    owner = KeyPair(b"\x55" * 32)
    with anyio.fail_after(20):
        async with (
            UdpDht(_keypair(0), config=CONFIG) as a,
            UdpDht(_keypair(1), config=CONFIG, seeds=[a.address]) as b,
        ):
            stored = await a.put_immutable(b"held by b alone")
            assert stored.stored == 1
            assert b.node.store.get_one(1, stored.key) is not None
            assert await b.get_immutable(stored.key) == b"held by b alone"
            assert await a.get_immutable(stored.key) == b"held by b alone"

            put = await a.put_mutable(owner, b"v1", salt=b"s")
            assert (put.stored, put.seq) == (1, 1)
            got = await b.get_mutable(owner.public_key, b"s")
            assert got.signed_value is not None
            assert (got.signed_value.seq, got.signed_value.value) == (1, b"v1")
            # B, the holder, writes next: its seq follows its own copy's, and CAS sees it.
            with pytest.raises(SeqConflict):
                await b.put_mutable(owner, b"stale", salt=b"s", cas=0)
            again = await b.put_mutable(owner, b"v2", salt=b"s", cas=1)
            assert again.seq == 2
            # A holds v2 now, B still v1: B's get prefers the higher remote seq and
            # repairs its own copy.
            got = await b.get_mutable(owner.public_key, b"s")
            assert got.signed_value is not None
            assert (got.signed_value.seq, got.signed_value.value) == (2, b"v2")
            held = b.node.store.get_one(2, got.signed_value.id)
            assert held is not None
            assert held.seq == 2
            # Announces too: A's lands on B alone, and B's lookup of the topic finds it.
            topic = b"\x0a" * 32
            await a.announce(owner, topic, [("192.0.2.9", 4000)])
            found = await b.lookup(topic)
            assert [x.public_key for x in found.announces] == [owner.public_key]
