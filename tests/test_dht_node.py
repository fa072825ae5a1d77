"""The sans-I/O DhtNode driven by hand: requests in, responses out, no network at all."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.dht import messages as m
from hyphal.dht.ids import immutable_key
from hyphal.dht.node import DhtConfig, DhtNode, Reply, RequestContext
from hyphal.dht.record_store import MemoryStore, RecordKind, StoredRecord
from hyphal.dht.records import AnnounceRecord, NodeRecord
from hyphal.dht.sqlite_records import SqliteRecordStore
from hyphal.errors import InvalidInput
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair

NOW = 1_800_000_000.0
HOME = ("10.0.0.1", 7400)
ALICE = ("10.0.0.2", 7400)
MALLORY = ("10.0.0.66", 7400)
OWNER = KeyPair(b"\x05" * 32)
TOPIC = b"\x0c" * 32


def make_node(**config: object) -> DhtNode:
    return DhtNode(
        KeyPair(b"\x01" * 32),
        [HOME],
        now=NOW,
        config=DhtConfig(**config),
        rng=random.Random(1),  # type: ignore[arg-type]
    )


def ask(node: DhtNode, addr: tuple[str, int], req: m.Request, now: float = NOW) -> m.Response | None:
    node.datagram_received(now, addr, req.encode())
    for to, data in node.datagrams_to_send():
        msg = m.decode_message(data)
        if to == addr and isinstance(msg, m.Response) and msg.txid == req.txid:
            return msg
    return None


def token_for(
    node: DhtNode, addr: tuple[str, int], target: bytes, method: int = m.Method.GET_MUTABLE
) -> bytes:
    resp = ask(node, addr, m.Request(method, 99, target))
    assert resp is not None
    assert resp.status == m.Status.OK
    return resp.token


def put_mutable(node: DhtNode, signed: SignedValue, cas: int | None = None, addr=ALICE) -> m.Response:  # type: ignore[no-untyped-def]
    token = token_for(node, addr, signed.id)
    payload = m.encode_mutable_put(signed.encode(), cas)
    resp = ask(node, addr, m.Request(m.Method.PUT_MUTABLE, 5, signed.id, token, payload))
    assert resp is not None
    return resp


def test_ping_answers_with_our_record_and_observed_address() -> None:
    node = make_node()
    resp = ask(node, ALICE, m.Request(m.Method.PING, 1))
    assert resp is not None
    assert resp.status == m.Status.OK
    assert NodeRecord.decode(resp.responder) == node.record
    assert resp.observed == ALICE


def test_write_tokens_are_bound_to_the_address() -> None:
    node = make_node()
    value = b"immutable"
    key = immutable_key(value)
    no_token = ask(node, ALICE, m.Request(m.Method.PUT_IMMUTABLE, 1, key, b"", value))
    assert no_token is not None
    assert no_token.status == m.Status.BAD_TOKEN
    token = token_for(node, ALICE, key, m.Method.GET_IMMUTABLE)
    stolen = ask(node, MALLORY, m.Request(m.Method.PUT_IMMUTABLE, 2, key, token, value))
    assert stolen is not None
    assert stolen.status == m.Status.BAD_TOKEN
    assert len(node.store) == 0
    ok = ask(node, ALICE, m.Request(m.Method.PUT_IMMUTABLE, 3, key, token, value))
    assert ok is not None
    assert ok.status == m.Status.OK
    got = ask(node, MALLORY, m.Request(m.Method.GET_IMMUTABLE, 4, key))
    assert got is not None
    assert m.decode_optional_value(got.payload) == value


def test_immutable_value_must_hash_to_its_key() -> None:
    node = make_node()
    key = immutable_key(b"real")
    token = token_for(node, ALICE, key, m.Method.GET_IMMUTABLE)
    resp = ask(node, ALICE, m.Request(m.Method.PUT_IMMUTABLE, 1, key, token, b"fake"))
    assert resp is not None
    assert resp.status == m.Status.BAD_RECORD
    assert len(node.store) == 0
    assert node.counters.forged == 1


def test_mutable_rules_seq_grows_cas_and_forgery() -> None:
    node = make_node()
    v1 = SignedValue.sign(OWNER, 1, b"one")
    v2 = SignedValue.sign(OWNER, 2, b"two")
    assert put_mutable(node, v2).status == m.Status.OK
    # Roll back: refused with the seq held.
    old = put_mutable(node, v1)
    assert old.status == m.Status.SEQ_TOO_OLD
    assert m.decode_seq(old.payload) == 2
    # Same seq, other value: refused (BEP 44).
    assert put_mutable(node, SignedValue.sign(OWNER, 2, b"other")).status == m.Status.SEQ_TOO_OLD
    # Same seq, same value: idempotent.
    assert put_mutable(node, v2).status == m.Status.OK
    # Compare-and-swap against the wrong seq.
    v3 = SignedValue.sign(OWNER, 3, b"three")
    conflict = put_mutable(node, v3, cas=1)
    assert conflict.status == m.Status.CAS_MISMATCH
    assert m.decode_seq(conflict.payload) == 2
    assert put_mutable(node, v3, cas=2).status == m.Status.OK
    # A forged version with a higher seq.
    forged = SignedValue(OWNER.public_key, 9, b"evil", v3.signature)
    assert put_mutable(node, forged).status == m.Status.BAD_RECORD
    assert node.counters.forged == 1
    stored = node.store.get_one(RecordKind.MUTABLE, v3.id)
    assert stored is not None
    assert SignedValue.decode_verified(stored.value) == v3
    # A signed value stored under another key.
    token = token_for(node, ALICE, b"\x00" * 32)
    resp = ask(
        node,
        ALICE,
        m.Request(m.Method.PUT_MUTABLE, 7, b"\x00" * 32, token, m.encode_mutable_put(v3.encode(), None)),
    )
    assert resp is not None
    assert resp.status == m.Status.BAD_RECORD


def test_announce_rules() -> None:
    node = make_node(max_announces_per_topic=2)
    token = token_for(node, ALICE, TOPIC, m.Method.LOOKUP)

    def announce(a: AnnounceRecord) -> int:
        resp = ask(node, ALICE, m.Request(m.Method.ANNOUNCE, 3, TOPIC, token, a.encode()))
        assert resp is not None
        return resp.status

    peers = [KeyPair(bytes([40 + i]) * 32) for i in range(3)]
    fresh = AnnounceRecord.sign(peers[0], TOPIC, int(NOW), 600, (("192.0.2.1", 1),))
    assert announce(fresh) == m.Status.OK
    assert (
        announce(AnnounceRecord.sign(peers[1], TOPIC, int(NOW) - 700, 600, (("192.0.2.1", 1),)))
        == m.Status.BAD_RECORD
    )
    assert (
        announce(AnnounceRecord.sign(peers[1], TOPIC, int(NOW) + 3600, 600, (("192.0.2.1", 1),)))
        == m.Status.BAD_RECORD
    )
    assert (
        announce(AnnounceRecord.sign(peers[1], b"\x01" * 32, int(NOW), 600, (("192.0.2.1", 1),)))
        == m.Status.BAD_RECORD
    )
    assert announce(AnnounceRecord.sign(peers[1], TOPIC, int(NOW), 300, (("192.0.2.2", 2),))) == m.Status.OK
    # Full topic: a newcomer that outlives the soonest-expiring announce replaces it.
    assert announce(AnnounceRecord.sign(peers[2], TOPIC, int(NOW), 100, (("192.0.2.3", 3),))) == m.Status.FULL
    assert announce(AnnounceRecord.sign(peers[2], TOPIC, int(NOW), 900, (("192.0.2.3", 3),))) == m.Status.OK
    resp = ask(node, MALLORY, m.Request(m.Method.LOOKUP, 8, TOPIC))
    assert resp is not None
    found = {AnnounceRecord.decode(a).public_key for a in m.decode_announces(resp.payload)}
    assert found == {peers[0].public_key, peers[2].public_key}
    # Expired announces are not served.
    later = ask(node, MALLORY, m.Request(m.Method.LOOKUP, 9, TOPIC), now=NOW + 1000)
    assert later is not None
    assert m.decode_announces(later.payload) == []


@given(st.binary(max_size=300))
def test_garbage_never_raises_and_is_counted(data: bytes) -> None:
    node = make_node()
    node.datagram_received(NOW, MALLORY, data)
    c = node.counters
    assert c.malformed + c.unexpected + c.forged + c.refused + (1 if node.datagrams_to_send() else 0) >= 1


def test_forged_sender_record_gets_no_answer() -> None:
    node = make_node()
    real = NodeRecord.sign(KeyPair(b"\x02" * 32), 1, (ALICE,))
    forged = NodeRecord(real.public_key, 2, (MALLORY,), real.signature)
    assert ask(node, MALLORY, m.Request(m.Method.PING, 1, sender=forged.encode())) is None
    assert node.counters.forged == 1
    assert len(node.table) == 0


def test_requester_enters_the_table_only_after_answering_our_ping() -> None:
    node = make_node()
    alice_key = KeyPair(b"\x02" * 32)
    alice = NodeRecord.sign(alice_key, 1, (ALICE,))
    node.datagram_received(NOW, ALICE, m.Request(m.Method.PING, 1, sender=alice.encode()).encode())
    out = node.datagrams_to_send()
    assert len(node.table) == 0
    pings = [m.decode_message(d) for to, d in out if to == ALICE]
    ping = next(p for p in pings if isinstance(p, m.Request))
    assert ping.method == m.Method.PING
    # Mallory answers in Alice's place: ignored (wrong address).
    pong = m.Response(m.Method.PING, ping.txid, alice.encode(), HOME)
    node.datagram_received(NOW + 0.01, MALLORY, pong.encode())
    assert len(node.table) == 0
    assert node.counters.unexpected == 1
    # Alice answers from her address: she is in.
    node.datagram_received(NOW + 0.02, ALICE, pong.encode())
    assert alice.id in node.table


def test_timeouts_come_from_timers_and_back_off() -> None:
    node = make_node(initial_timeout=0.5)
    op = node.ping(NOW, ALICE)
    assert node.datagrams_to_send()
    deadline = node.get_timer()
    assert deadline is not None
    assert deadline == pytest.approx(NOW + 0.5)
    node.timer_fired(deadline - 0.001)
    assert not op.done
    node.timer_fired(deadline)
    assert op.done
    assert op.result() is None
    assert node.counters.timeouts == 1


def test_rate_limit_per_ip() -> None:
    node = make_node(rate=1, burst=3)
    answered = [ask(node, MALLORY, m.Request(m.Method.PING, i)) for i in range(6)]
    assert sum(a is not None for a in answered) == 3
    assert node.counters.rate_limited == 3
    assert ask(node, ALICE, m.Request(m.Method.PING, 7)) is not None


def test_extension_handlers() -> None:
    node = make_node()
    with pytest.raises(InvalidInput):
        node.register_handler(m.Method.PING, lambda ctx: Reply())
    seen: list[RequestContext] = []

    def echo(ctx: RequestContext) -> Reply:
        seen.append(ctx)
        if ctx.request.payload == b"boom":
            raise RuntimeError("extension bug")
        return Reply(payload=ctx.request.payload[::-1], nodes=True, token=True)

    node.register_handler(70, echo)
    resp = ask(node, ALICE, m.Request(70, 1, b"\x01" * 32, payload=b"abc"))
    assert resp is not None
    assert resp.payload == b"cba"
    assert len(resp.token) == 16
    assert seen[0].addr == ALICE
    broken = ask(node, ALICE, m.Request(70, 2, b"\x01" * 32, payload=b"boom"))
    assert broken is not None
    assert broken.status == m.Status.ERROR
    unknown = ask(node, ALICE, m.Request(71, 3))
    assert unknown is not None
    assert unknown.status == m.Status.UNKNOWN_METHOD


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_stores(backend: str, tmp_path: Path) -> None:
    store = MemoryStore() if backend == "memory" else SqliteRecordStore(str(tmp_path / "dht.db"))
    a = StoredRecord(RecordKind.ANNOUNCE, b"t" * 32, b"p1", 5, b"v1", 100.0)
    b = StoredRecord(RecordKind.ANNOUNCE, b"t" * 32, b"p2", 6, b"v2", 200.0)
    store.put(a)
    store.put(b)
    store.put(StoredRecord(RecordKind.MUTABLE, b"k" * 32, b"", 1, b"sv", 300.0))
    assert len(store) == 3
    assert sorted(r.sub for r in store.get(RecordKind.ANNOUNCE, b"t" * 32)) == [b"p1", b"p2"]
    store.put(StoredRecord(RecordKind.ANNOUNCE, b"t" * 32, b"p1", 7, b"v3", 250.0))
    assert store.get_one(RecordKind.ANNOUNCE, b"t" * 32, b"p1") == StoredRecord(
        RecordKind.ANNOUNCE, b"t" * 32, b"p1", 7, b"v3", 250.0
    )
    assert store.expire(220.0) == 1
    assert len(store) == 2
    assert len(list(store.records())) == 2
    store.delete(RecordKind.MUTABLE, b"k" * 32)
    assert store.get(RecordKind.MUTABLE, b"k" * 32) == []
    store.close()
    if backend == "sqlite":
        again = SqliteRecordStore(str(tmp_path / "dht.db"))
        assert [r.value for r in again.records()] == [b"v3"]
        again.close()


def test_validate_hook_vets_mutable_values() -> None:
    node = make_node(validate_mutable=lambda sv: not sv.value.startswith(b"bad"))
    assert put_mutable(node, SignedValue.sign(OWNER, 1, b"good")).status == m.Status.OK
    assert put_mutable(node, SignedValue.sign(OWNER, 2, b"bad value")).status == m.Status.BAD_RECORD
    stored = node.store.get_one(RecordKind.MUTABLE, SignedValue.sign(OWNER, 1, b"good").id)
    assert stored is not None
    assert stored.seq == 1


def test_responses_tell_us_our_observed_address() -> None:
    node = make_node()
    op = node.ping(NOW, ALICE)
    (_to, data), *_ = node.datagrams_to_send()
    req = m.decode_message(data)
    alice = NodeRecord.sign(KeyPair(b"\x02" * 32), 1, (ALICE,))
    node.datagram_received(
        NOW + 0.01, ALICE, m.Response(m.Method.PING, req.txid, alice.encode(), ("203.0.113.5", 4000)).encode()
    )
    assert op.done
    assert node.observed_addresses == {("203.0.113.5", 4000): 1}
    assert alice.id in node.table


def _far_records(node: DhtNode, count: int, start: int = 10) -> list[NodeRecord]:
    """Records of nodes whose ids fall in ``node``'s bucket 0 (first bit differs)."""
    out = []
    for i in range(start, start + 1000):
        r = NodeRecord.sign(KeyPair(bytes([i % 256, i // 256]) * 16), 1, ((f"10.1.{i // 256}.{i % 256}", 1),))
        if (r.id[0] ^ node.id[0]) & 0x80:
            out.append(r)
            if len(out) == count:
                return out
    raise AssertionError("not enough records")


def test_a_request_from_a_full_quiet_bucket_pings_its_oldest_entry() -> None:
    node = make_node(k=2, refresh_interval=3600)
    entries, stranger = _far_records(node, 2), _far_records(node, 1, start=2000)[0]
    near = NodeRecord.sign(KeyPair(b"\x07" * 32), 1, (("10.2.0.1", 1),))
    for r in [*entries, near]:  # a nearer node makes the table split: bucket 0 cannot grow any more
        node.table.seen(r, r.addresses[0], NOW)
    if node.table.bucket_count < 2:
        pytest.skip("the near record happened to share no bit with us")

    def request_from_stranger(at: float) -> list[tuple[tuple[str, int], m.Message]]:
        req = m.Request(m.Method.PING, 5, sender=stranger.encode())
        node.datagram_received(at, stranger.addresses[0], req.encode())
        return [(to, m.decode_message(d)) for to, d in node.datagrams_to_send()]

    # Fresh bucket: the stranger is answered, nothing else (its bucket is full, it cannot enter).
    out = request_from_stranger(NOW + 100)
    assert [type(msg) for _, msg in out] == [m.Response]
    # Quiet for half the refresh interval: the least recently seen entry gets a ping.
    out = request_from_stranger(NOW + 1900)
    pings = [(to, msg) for to, msg in out if isinstance(msg, m.Request)]
    assert [to for to, _ in pings] == [entries[0].addresses[0]]
    # It answers: the bucket is fresh again, so the next request costs no ping.
    to, ping = pings[0]
    pong = m.Response(m.Method.PING, ping.txid, entries[0].encode(), HOME)
    node.datagram_received(NOW + 1900.1, to, pong.encode())
    assert not [msg for _, msg in request_from_stranger(NOW + 1901) if isinstance(msg, m.Request)]
    assert node.table.stale_buckets(NOW + 1901, 3600) == []
    # Quiet again and this time the entry is gone: it is evicted after its timeout.
    out = request_from_stranger(NOW + 4000)
    ((to, ping),) = [(to, msg) for to, msg in out if isinstance(msg, m.Request)]
    assert to == entries[1].addresses[0]
    node.timer_fired(NOW + 4010)
    assert entries[1].id not in node.table


def _pair() -> tuple[DhtNode, DhtNode]:
    """Our node (HOME) knowing one other node (ALICE), both driven by hand."""
    home, alice = (
        make_node(min_timeout=0.05, initial_timeout=0.05, max_timeout=2.0),
        DhtNode(KeyPair(b"\x02" * 32), [ALICE], now=NOW, rng=random.Random(2)),
    )
    home.table.seen(alice.record, ALICE, NOW)
    return home, alice


def _exchange(home: DhtNode, alice: DhtNode, now: float, *, hold: int | None = None) -> list[bytes]:
    """Carry datagrams both ways until quiet; Alice's answers to method ``hold`` are kept back."""
    held: list[bytes] = []
    moved = True
    while moved:
        moved = False
        for to, data in home.datagrams_to_send():
            assert to == ALICE
            alice.datagram_received(now, HOME, data)
            moved = True
        for to, data in alice.datagrams_to_send():
            assert to == HOME
            msg = m.decode_message(data)
            if isinstance(msg, m.Response) and msg.method == hold:
                held.append(data)
            else:
                home.datagram_received(now, ALICE, data)
            moved = True
    return held


def test_a_put_counts_a_store_answer_that_comes_after_its_timeout() -> None:
    # A busy process (a GC pause, a loaded core) reads answers after their timers fired: the
    # holder did store the value, and the put must not report that it stored nowhere.
    home, alice = _pair()
    op = home.put_immutable(NOW, b"late but stored")
    held = _exchange(home, alice, NOW + 0.001, hold=m.Method.PUT_IMMUTABLE)
    assert len(held) == 1
    soft = home.get_timer()
    assert soft is not None
    assert soft < NOW + 1
    home.timer_fired(soft)
    assert not op.done  # no holder confirmed yet: it waits for late answers
    home.datagram_received(soft + 0.2, ALICE, held[0])
    assert op.done
    result = op.result()
    assert result.stored == 1
    assert result.timeouts == 0
    stored = alice.store.get_one(RecordKind.IMMUTABLE, result.key)
    assert stored is not None
    assert stored.value == b"late but stored"


def test_a_put_nobody_answers_ends_at_the_hard_timeout_with_nothing_stored() -> None:
    home, alice = _pair()
    op = home.put_immutable(NOW, b"lost")
    assert len(_exchange(home, alice, NOW + 0.001, hold=m.Method.PUT_IMMUTABLE)) == 1
    while not op.done:
        deadline = home.get_timer()
        assert deadline is not None
        assert deadline <= NOW + 2.0 + 0.01
        home.timer_fired(deadline)
    result = op.result()
    assert result.stored == 0
    assert result.timeouts == 1
