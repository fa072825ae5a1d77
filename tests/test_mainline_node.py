"""The mainline KRPC node without libtorrent: known answers, the sans-I/O node, and bad input.

- BEP 42's and BEP 44's published test vectors (id-from-IP, targets, signatures);
- hyphal nodes wired in memory (no socket, virtual time): get/put, CAS, seq, read-only;
- a hostile KRPC responder on a real UDP socket serving forged, rolled-back and
  oversized items: each is dropped and counted, and the node still answers.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.dht.operation import Operation
from hyphal.errors import DecodeError, InvalidInput, SeqConflict
from hyphal.mainline.config import KrpcConfig
from hyphal.mainline.ids import bep42_id, bep42_ok, sort_by_distance
from hyphal.mainline.items import MutableItem, immutable_target, mutable_target, signed_payload
from hyphal.mainline.messages import (
    CAS_MISMATCH,
    INVALID_SIGNATURE,
    MESSAGE_TOO_BIG,
    PROTOCOL_ERROR,
    SALT_TOO_BIG,
    SEQ_TOO_OLD,
    Addr,
    KrpcError,
    Query,
    Response,
    bdecode,
    bencode,
    decode_message,
    encode_nodes,
    encode_query,
    encode_response,
)
from hyphal.mainline.node import MainlineNode
from hyphal.mainline.udp import MainlineUdp
from hyphal.signing import KeyPair, verify

T = TypeVar("T")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


# -- known answers -----------------------------------------------------------------------------

BEP42 = [
    ("124.31.75.21", 1, "5fbfbf", "01"),
    ("21.75.31.124", 86, "5a3ce9", "56"),
    ("65.23.51.170", 22, "a5d432", "16"),
    ("84.124.73.14", 65, "1b0321", "41"),
    ("43.213.53.83", 90, "e56f6c", "5a"),
]


@pytest.mark.parametrize(("ip", "rand", "prefix", "last"), BEP42)
def test_bep42_vectors(ip: str, rand: int, prefix: str, last: str) -> None:
    node_id = bep42_id(ip, random.Random(7), rand)
    # The first 21 bits are fixed by the IP; the next 3 are random.
    assert node_id[:2].hex() == prefix[:4]
    assert node_id[2] & 0xF8 == int(prefix[4:], 16) & 0xF8
    assert node_id[-1:].hex() == last
    assert bep42_ok(node_id, ip)
    assert not bep42_ok(node_id, "1.2.3.4")


BEP44_PK = bytes.fromhex("77ff84905a91936367c01360803104f92432fcd904a43511876df5cdf3e7e548")


def test_bep44_vectors() -> None:
    v = bencode(b"Hello World!")
    assert v == b"12:Hello World!"
    assert immutable_target(v).hex() == "e5f96f6f38320f0f33959cb4d3d656452117aadb"
    assert mutable_target(BEP44_PK).hex() == "4a533d47ec9c7d95b1ad75f576cffc641853b750"
    assert mutable_target(BEP44_PK, b"foobar").hex() == "411eba73b6f087ca51a3795d9c8c938d365e32c1"
    assert signed_payload(b"", 1, v) == b"3:seqi1e1:v12:Hello World!"
    assert signed_payload(b"foobar", 1, v) == b"4:salt6:foobar3:seqi1e1:v12:Hello World!"
    plain = bytes.fromhex(
        "305ac8aeb6c9c151fa120f120ea2cfb923564e11552d06a5d856091e5e853cff"
        "1260d3f39e4999684aa92eb73ffd136e6f4f3ecbfda0ce53a1608ecd7ae21f01"
    )
    salted = bytes.fromhex(
        "6834284b6b24c3204eb2fea824d82f88883a3d95e8b4a21b8c0ded553d17d17d"
        "df9a8a7104b1258f30bed3787e6cb896fca78c58f8e03b5f18f14951a87d9a08"
    )
    assert verify(BEP44_PK, signed_payload(b"", 1, v), plain)
    assert verify(BEP44_PK, signed_payload(b"foobar", 1, v), salted)
    MutableItem(BEP44_PK, b"foobar", 1, v, salted).verify()
    assert not verify(BEP44_PK, signed_payload(b"foobar", 2, v), salted)


def test_xor_order_of_padded_ids_matches_python() -> None:
    rng = random.Random(3)
    target = rng.randbytes(20)
    ids = [rng.randbytes(20) for _ in range(50)]
    expected = sorted(range(50), key=lambda i: int.from_bytes(ids[i], "big") ^ int.from_bytes(target, "big"))
    assert sort_by_distance(target, ids) == expected


def test_values_over_1000_bytes_and_long_salts_are_refused() -> None:
    keypair = KeyPair.generate()
    with pytest.raises(InvalidInput):
        MutableItem.sign(keypair, b"x" * 997, 1)  # "997:" + 997 bytes = 1001 bytes
    assert len(MutableItem.sign(keypair, b"x" * 996, 1).v) == 1000
    with pytest.raises(InvalidInput):
        MutableItem.sign(keypair, b"x", 1, salt=b"s" * 65)


@given(st.binary(max_size=300))
def test_decoding_garbage_raises_decode_error_only(data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decode_message(data)


@given(st.binary(max_size=300))
def test_garbage_datagrams_never_raise_out_of_the_node(data: bytes) -> None:
    node = MainlineNode(bytes(20), now=0.0, rng=random.Random(1))
    node.datagram_received(0.0, ("127.0.0.9", 9), data)
    node.datagram_received(
        0.0, ("127.0.0.9", 9), bencode({b"t": b"x", b"y": b"q", b"q": b"get", b"a": {b"id": bytes(20)}})
    )
    assert node.counters.received == 2


# -- hyphal nodes in memory ------------------------------------------------------------------------


class Wire:
    """Nodes on a loss-free in-memory network with virtual time: datagrams are delivered at once."""

    def __init__(self, count: int, *, seed: int = 1, read_only: set[int] | None = None) -> None:
        rng = random.Random(seed)
        self.now = 1000.0
        self.nodes: dict[Addr, MainlineNode] = {}
        for i in range(count):
            config = KrpcConfig(read_only=i in (read_only or set()))
            self.nodes[(f"127.0.0.{i + 1}", 6881)] = MainlineNode(
                rng.randbytes(20), now=self.now, config=config, rng=random.Random(seed * 100 + i)
            )
        self.addrs = list(self.nodes)
        self.sniffed: list[tuple[Addr, Addr, Any]] = []

    def node(self, i: int) -> MainlineNode:
        return self.nodes[self.addrs[i]]

    def pump(self) -> bool:
        moved = False
        for src, node in list(self.nodes.items()):
            for dst, data in node.datagrams_to_send():
                moved = True
                self.sniffed.append((src, dst, bdecode(data)))
                peer = self.nodes.get(dst)
                if peer is not None:
                    peer.datagram_received(self.now, src, data)
        return moved

    def run(self, start: Callable[[float], Operation[T]], limit: float = 60.0) -> T:
        op = start(self.now)
        end = self.now + limit
        while not op.done:
            if self.pump():
                continue
            due = [t for t in (n.get_timer() for n in self.nodes.values()) if t is not None]
            assert due, "nothing left to happen, and the operation never ended"
            assert min(due) <= end, "the operation never ended"
            self.now = max(self.now, min(due))
            for n in self.nodes.values():
                n.timer_fired(self.now)
        return op.result()

    def join(self) -> None:
        for i in range(1, len(self.addrs)):
            self.run(lambda now, i=i: self.node(i).bootstrap(now, [self.addrs[0]]))  # type: ignore[misc]
        self.run(lambda now: self.node(0).bootstrap(now, [self.addrs[1]]))


def test_in_memory_nodes_put_and_get_every_kind() -> None:
    wire = Wire(12)
    wire.join()
    a, b = wire.node(3), wire.node(9)
    keypair = KeyPair.generate()

    put = wire.run(lambda now: a.put_immutable(now, b"hello"))
    assert put.stored >= 3
    item = wire.run(lambda now: b.get_immutable(now, put.target))
    assert item is not None
    assert item.value == b"hello"

    first = wire.run(lambda now: a.put_mutable(now, keypair, b"one", salt=b"s"))
    assert first.seq == 1
    assert first.stored >= 3
    got = wire.run(lambda now: b.get_mutable(now, keypair.public_key, b"s"))
    assert got is not None
    assert got.value == b"one"
    second = wire.run(lambda now: b.put_mutable(now, keypair, b"two", salt=b"s", cas=1))
    assert second.seq == 2
    with pytest.raises(SeqConflict):
        wire.run(lambda now: a.put_mutable(now, keypair, b"late", salt=b"s", seq=5, cas=1))
    with pytest.raises(SeqConflict):
        wire.run(lambda now: a.put_mutable(now, keypair, b"older", salt=b"s", seq=1))
    got = wire.run(lambda now: a.get_mutable(now, keypair.public_key, b"s"))
    assert got is not None
    assert (got.seq, got.value) == (2, b"two")

    info_hash = bytes(20)
    wire.run(lambda now: a.announce_peer(now, info_hash, 7000))
    wire.run(lambda now: wire.node(5).announce_peer(now, info_hash))
    found = wire.run(lambda now: b.get_peers(now, info_hash))
    assert set(found.peers) == {(wire.addrs[3][0], 7000), (wire.addrs[5][0], 6881)}


def test_read_only_nodes_answer_nobody_and_stay_out_of_tables() -> None:
    wire = Wire(8, read_only={7})
    wire.join()
    ro = wire.node(7)
    assert len(ro.table) >= 4  # it still finds and uses the others
    for i in range(7):
        assert ro.id not in wire.node(i).table
    queries = [m for src, _, m in wire.sniffed if src == wire.addrs[7] and m[b"y"] == b"q"]
    assert queries
    assert all(m.get(b"ro") == 1 for m in queries)
    ro.datagram_received(wire.now, ("127.0.0.9", 1), encode_query(b"t", "ping", {b"id": bytes(20)}))
    assert ro.datagrams_to_send() == []
    assert ro.counters.ignored_read_only == 1


def _ask(node: MainlineNode, method: str, args: dict[bytes, Any], addr: Addr = ("127.0.0.50", 1)) -> Any:
    node.datagrams_to_send()
    node.datagram_received(1000.0, addr, encode_query(b"tt", method, {b"id": bytes(19) + b"\x01", **args}))
    [(dst, data)] = node.datagrams_to_send()
    assert dst == addr
    return decode_message(data)


def test_the_server_refuses_bad_puts_with_bep44_codes() -> None:
    node = MainlineNode(bytes(20), now=1000.0, rng=random.Random(2))
    keypair = KeyPair.generate()
    target = mutable_target(keypair.public_key, b"")
    token = _ask(node, "get", {b"target": target}).values[b"token"]

    def put(item: MutableItem, extra: dict[bytes, Any] | None = None) -> Any:
        return _ask(node, "put", {b"token": token, **item.wire(), **(extra or {})})

    assert isinstance(
        _ask(node, "put", {b"token": b"wrong", **MutableItem.sign(keypair, b"v", 1).wire()}), KrpcError
    )
    assert isinstance(put(MutableItem.sign(keypair, b"v", 2)), Response)
    forged = MutableItem(keypair.public_key, b"", 3, bencode(b"evil"), bytes(64))
    assert put(forged).code == INVALID_SIGNATURE
    assert put(MutableItem.sign(keypair, b"old", 1)).code == SEQ_TOO_OLD
    assert put(MutableItem.sign(keypair, b"new", 4), {b"cas": 3}).code == CAS_MISMATCH
    big = _ask(node, "put", {b"token": token, b"v": b"x" * 1000})
    assert big.code == MESSAGE_TOO_BIG
    salted = MutableItem.sign(keypair, b"v", 1, salt=b"s")
    assert _ask(node, "put", {b"token": token, **salted.wire(), b"salt": b"s" * 65}).code == SALT_TOO_BIG
    assert _ask(node, "get", {b"target": b"short"}).code == PROTOCOL_ERROR
    held = _ask(node, "get", {b"target": target})
    assert held.values[b"seq"] == 2
    assert held.values[b"v"] == b"v"
    assert node.counters.refused == 7


# -- a hostile KRPC responder --------------------------------------------------------------------------


class Hostile:
    """Answers every query; a ``get`` with whatever :attr:`serve` makes for the target."""

    def __init__(self) -> None:
        self.id = bytes([0xEE]) * 20
        self.serve: Callable[[bytes], dict[bytes, Any]] = lambda target: {}

    async def run(self, sock: Any) -> None:
        async for data, (host, port) in sock:
            try:
                q = decode_message(data)
            except DecodeError:
                continue
            if not isinstance(q, Query):
                continue
            values: dict[bytes, Any] = {b"id": self.id, b"nodes": encode_nodes([]), b"token": b"tok"}
            if q.method == "get":
                values.update(self.serve(q.args[b"target"]))
            await sock.sendto(encode_response(q.tid, values), host, port)


@pytest.mark.anyio
async def test_forged_rolled_back_and_oversized_items_from_a_hostile_node_are_refused() -> None:
    hostile = Hostile()
    keypair, other = KeyPair.generate(), KeyPair.generate()
    salt = b"pointer"
    good = MutableItem.sign(keypair, b"the real value", 7, salt)
    async with await anyio.create_udp_socket(local_host="127.0.0.1") as sock, anyio.create_task_group() as tg:
        tg.start_soon(hostile.run, sock)
        router = f"127.0.0.1:{sock.extra(anyio.abc.SocketAttribute.local_port)}"
        async with MainlineUdp(
            host="127.0.0.1", routers=[router], config=KrpcConfig(query_timeout=0.5)
        ) as dht:
            counters = dht.node.counters

            def forged_signature(target: bytes) -> dict[bytes, Any]:
                wire = MutableItem(keypair.public_key, salt, 9, bencode(b"forged"), good.signature).wire()
                return {k: v for k, v in wire.items() if k != b"salt"}

            hostile.serve = forged_signature
            assert await dht.get_mutable(keypair.public_key, salt) is None
            assert counters.forged == 1

            def wrong_key(target: bytes) -> dict[bytes, Any]:  # validly signed, by someone else
                wire = MutableItem.sign(other, b"not yours", 50, salt).wire()
                return {k: v for k, v in wire.items() if k != b"salt"}

            hostile.serve = wrong_key
            assert await dht.get_mutable(keypair.public_key, salt) is None
            assert counters.forged == 2

            hostile.serve = lambda target: {k: v for k, v in good.wire().items() if k != b"salt"}
            item = await dht.get_mutable(keypair.public_key, salt)
            assert item is not None
            assert item.seq == 7
            assert item.value == b"the real value"

            older = MutableItem.sign(keypair, b"an older value", 3, salt)
            hostile.serve = lambda target: {k: v for k, v in older.wire().items() if k != b"salt"}
            again = await dht.get_mutable(keypair.public_key, salt)
            assert again is not None
            assert again.seq == 7
            assert counters.rolled_back == 1

            hostile.serve = lambda target: {b"v": b"not the value that hashes to the target"}
            assert await dht.get_immutable(immutable_target(b"5:hello")) is None
            assert counters.forged == 3

            hostile.serve = lambda target: {b"v": b"x" * 1100}
            assert await dht.get_immutable(immutable_target(b"5:hello")) is None

            # Garbage and an oversized datagram straight at the node: counted, and it keeps answering.
            before = counters.malformed + counters.oversized
            port = dht.address[1]
            await sock.sendto(b"d1:t", "127.0.0.1", port)
            await sock.sendto(b"x" * 2000, "127.0.0.1", port)
            # The ping's answer comes from the same socket after the garbage, so both were read first.
            assert await dht.ping(("127.0.0.1", sock.extra(anyio.abc.SocketAttribute.local_port)))
            assert counters.malformed + counters.oversized == before + 2
        tg.cancel_scope.cancel()


def test_our_queries_are_rate_limited_and_a_silent_node_is_backed_off() -> None:
    config = KrpcConfig(query_rate=10.0, query_burst=2.0, query_timeout=1.0, backoff=30.0, max_failures=2)
    node = MainlineNode(bytes(20), now=0.0, config=config, rng=random.Random(4))
    silent = ("127.0.0.77", 6881)
    failures: list[int | None] = []

    def ask(now: float) -> None:
        node.query(
            now, silent, "ping", {}, on_reply=lambda t, r: None, on_fail=lambda t, c: failures.append(c)
        )

    for _ in range(4):  # a burst of 2 leaves at once; the other 2 wait for the bucket to refill
        ask(0.0)
    assert len(node.datagrams_to_send()) == 2
    assert node.counters.queued == 2
    node.timer_fired(0.1)
    assert len(node.datagrams_to_send()) == 1  # one token a tenth of a second
    node.timer_fired(0.2)
    assert len(node.datagrams_to_send()) == 1
    node.timer_fired(5.0)  # all four time out: the node is in back-off now
    assert failures == [None] * 4
    assert node.counters.timeouts == 4
    ask(5.0)
    node.timer_fired(5.0)
    assert node.datagrams_to_send() == []
    assert node.counters.backed_off == 1
    assert failures == [None] * 5
    ask(5.0 + 8 * 30.0)  # the back-off (doubling per failure) has run out: asked again
    assert len(node.datagrams_to_send()) == 1
