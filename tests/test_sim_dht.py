"""Simulation tests: the real DhtNode state machines on hyphal.sim's virtual network."""

from __future__ import annotations

import math

import pytest

from hyphal.dht import messages as m
from hyphal.dht.node import DhtConfig, Reply, RequestContext
from hyphal.errors import SeqConflict
from hyphal.signed_value import SignedValue
from hyphal.signing import KeyPair
from hyphal.sim import SimHost, Simulator
from hyphal.xor import xor_closest

OWNER = KeyPair(b"\x0a" * 32)


def build(n: int, seed: int = 1, **kw: object) -> tuple[Simulator, list[SimHost]]:
    config = kw.pop("config", None) or DhtConfig(k=8)
    sim = Simulator(seed, config=config, **kw)  # type: ignore[arg-type]
    hosts = sim.add_nodes(n)
    sim.join_all(hosts)
    return sim, hosts


def true_closest(hosts: list[SimHost], target: bytes, k: int) -> list[bytes]:
    live = [h for h in hosts if h.alive]
    return [live[i].node.id for i in xor_closest(target, [h.node.id for h in live], k)]


@pytest.fixture(scope="module")
def net() -> tuple[Simulator, list[SimHost]]:
    return build(150)


def test_lookups_converge_on_the_true_closest(net: tuple[Simulator, list[SimHost]]) -> None:
    sim, hosts = net
    for i in range(20):
        origin = hosts[(i * 37) % len(hosts)]
        target = sim.rng.randbytes(32)
        op = sim.run_until_done(sim.start(origin, lambda n, now, t=target: n.find_node(now, t)))
        result = op.result()
        expected = [x for x in true_closest(hosts, target, 9) if x != origin.node.id][:8]
        assert [r.id for r in result.closest] == expected
        assert result.hops <= math.ceil(math.log2(len(hosts)))
        assert op.latency is not None
        assert op.latency < 2.0


def test_disjoint_path_lookups_converge() -> None:
    sim, hosts = build(120, seed=12, config=DhtConfig(k=8, disjoint_paths=3))
    for i in range(10):
        target = hosts[(i * 13 + 5) % len(hosts)].node.id
        op = sim.run_until_done(sim.start(hosts[i], lambda n, now, t=target: n.find_node(now, t)))
        assert op.result().closest[0].id == target


def test_same_seed_same_trace() -> None:
    def run(seed: int) -> tuple[str, list[bytes]]:
        sim, hosts = build(40, seed=seed, loss=0.05)
        owner = KeyPair(b"\x0b" * 32)
        sim.run_until_done(sim.start(hosts[3], lambda n, now: n.put_mutable(now, owner, b"x")))
        op = sim.run_until_done(sim.start(hosts[9], lambda n, now: n.get_mutable(now, owner.public_key)))
        return sim.trace_digest, [r.id for r in op.result().closest]

    first = run(7)
    assert run(7) == first
    assert run(8)[0] != first[0]


def test_mutable_put_get_cas_and_rollback(net: tuple[Simulator, list[SimHost]]) -> None:
    sim, hosts = net
    owner = KeyPair(b"\x0c" * 32)
    put = sim.run_until_done(sim.start(hosts[1], lambda n, now: n.put_mutable(now, owner, b"one", cas=0)))
    assert put.result().seq == 1
    assert put.result().stored == 8
    # A second writer that still believes the record is new loses its compare-and-swap.
    lost = sim.run_until_done(sim.start(hosts[2], lambda n, now: n.put_mutable(now, owner, b"two", cas=0)))
    assert isinstance(lost.error, SeqConflict)
    won = sim.run_until_done(sim.start(hosts[2], lambda n, now: n.put_mutable(now, owner, b"two", cas=1)))
    assert won.result().seq == 2
    # A pre-signed put whose CAS every holder refuses reports the conflict too.
    v3 = SignedValue.sign(owner, 3, b"three")
    refused = sim.run_until_done(sim.start(hosts[4], lambda n, now: n.put_signed(now, v3, cas=1)))
    assert isinstance(refused.error, SeqConflict)
    # Rolling back to seq 1 is refused by every holder.
    v1 = SignedValue.sign(owner, 1, b"one")
    back = sim.run_until_done(sim.start(hosts[5], lambda n, now: n.put_signed(now, v1, republish=False)))
    assert back.result().stored == 0
    assert back.result().refused == {m.Status.SEQ_TOO_OLD: 8}
    got = sim.run_until_done(sim.start(hosts[7], lambda n, now: n.get_mutable(now, owner.public_key)))
    assert got.result().signed_value is not None
    assert got.result().signed_value.value == b"two"


def test_forged_and_stale_answers_lose_and_stale_copies_are_repaired() -> None:
    sim, hosts = build(80, seed=3)
    owner = KeyPair(b"\x0d" * 32)
    v1 = SignedValue.sign(owner, 1, b"old")
    v2 = SignedValue.sign(owner, 2, b"new")
    sim.run_until_done(sim.start(hosts[0], lambda n, now: n.put_signed(now, v1, republish=False)))
    holders = [h for h in hosts if h.node.store.get_one(2, v1.id) is not None]
    assert len(holders) == 8
    # Partition three holders away, then update: they keep the stale copy.
    stale = holders[:3]
    sim.partition([stale, [h for h in hosts if h not in stale]])
    sim.run_until_done(sim.start(hosts[0], lambda n, now: n.put_signed(now, v2, republish=False)))
    sim.heal()
    # One holder turns malicious: it answers gets with a forged seq 99.
    liar = holders[4]
    forged = SignedValue(owner.public_key, 99, b"evil", v2.signature)

    def lie(ctx: RequestContext) -> Reply:
        return Reply(payload=forged.encode(), nodes=True, token=True)

    liar.node._handlers[m.Method.GET_MUTABLE] = lie
    reader = next(h for h in hosts if h not in holders)
    op = sim.run_until_done(sim.start(reader, lambda n, now: n.get_mutable(now, owner.public_key)))
    result = op.result()
    assert result.signed_value == v2
    assert reader.node.counters.forged >= 1
    assert result.repaired >= 3
    sim.run_for(5)
    for h in stale:
        row = h.node.store.get_one(2, v1.id)
        assert row is not None
        assert SignedValue.decode_verified(row.value) == v2


def test_records_survive_a_30_percent_crash() -> None:
    sim, hosts = build(200, seed=4)
    keys = []
    for i in range(15):
        value = f"value {i}".encode()
        op = sim.run_until_done(sim.start(hosts[i], lambda n, now, v=value: n.put_immutable(now, v)))
        keys.append((op.result().key, value))
    for h in sim.rng.sample(hosts, 60):
        sim.crash(h)
    alive = [h for h in hosts if h.alive]
    found = 0
    for i, (key, value) in enumerate(keys):
        op = sim.run_until_done(sim.start(alive[i], lambda n, now, k=key: n.get_immutable(now, k)))
        found += op.result().value == value
    assert found == len(keys)


def test_removed_hosts_are_gone_for_good_and_newcomers_take_fresh_addresses() -> None:
    sim, hosts = build(60, seed=6)
    gone = hosts[10:20]
    for h in gone:
        sim.remove(h)
    assert len(sim.hosts) == 50
    assert not any(h.alive for h in gone)
    assert all(h.addr not in sim.by_addr for h in gone)
    newcomer = sim.add_node()
    assert newcomer.addr not in {h.addr for h in hosts}
    sim.run_until_done(sim.join(newcomer, hosts[:3]))
    before = sim.dropped
    # A lookup of a removed node's id meets removed nodes: their datagrams are dropped, and the
    # answer is the closest of the hosts still there, the newcomer included.
    target = gone[0].node.id
    op = sim.run_until_done(sim.start(hosts[30], lambda n, now: n.find_node(now, target)))
    live = [*hosts[:10], *hosts[20:], newcomer]
    assert [r.id for r in op.result().closest][:3] == [
        x for x in true_closest(live, target, 4) if x != hosts[30].node.id
    ][:3]
    assert sim.dropped > before


def test_announce_and_lookup_under_loss() -> None:
    sim, hosts = build(100, seed=5, loss=0.1)
    topic = b"\x44" * 32
    peers = [KeyPair(bytes([60 + i]) * 32) for i in range(3)]
    for i, peer in enumerate(peers):
        sim.run_until_done(
            sim.start(hosts[i], lambda n, now, p=peer, i=i: n.announce(now, p, topic, [(f"192.0.2.{i}", 9)]))
        )
    op = sim.run_until_done(sim.start(hosts[50], lambda n, now: n.lookup(now, topic)))
    assert {a.public_key for a in op.result().announces} == {p.public_key for p in peers}


def test_holders_re_replicate_when_the_closest_set_changes() -> None:
    config = DhtConfig(k=4, replicate_interval=300, maintenance_interval=60, republish_interval=10**6)
    sim, hosts = build(60, seed=6, config=config)
    put = sim.run_until_done(
        sim.start(hosts[0], lambda n, now: n.put_immutable(now, b"keep me", republish=False))
    )
    key = put.result().key
    holders = [h for h in hosts if h.node.store.get_one(1, key) is not None]
    assert len(holders) == 4
    # Half the holders die; the others push copies to the nodes now closest.
    for h in holders[:2]:
        sim.crash(h)
    sim.run_for(900)
    for h in holders[2:]:
        sim.crash(h)
    reader = next(h for h in hosts if h.alive and h is not hosts[0])
    op = sim.run_until_done(sim.start(reader, lambda n, now: n.get_immutable(now, key)))
    assert op.result().value == b"keep me"


def test_partitioned_halves_each_find_their_own_nodes() -> None:
    sim, hosts = build(60, seed=8)
    left, right = hosts[:30], hosts[30:]
    sim.partition([left, right])
    target = right[5].node.id
    op = sim.run_until_done(sim.start(left[0], lambda n, now: n.find_node(now, target)))
    assert all(r.id in {h.node.id for h in left} for r in op.result().closest)
    assert op.result().timeouts > 0
    sim.heal()
    op = sim.run_until_done(sim.start(left[0], lambda n, now: n.find_node(now, target)))
    assert op.result().closest[0].id == target


def test_big_network_lookups() -> None:
    """1,500 nodes with tables filled as after a long run: every lookup lands, in at most log2(n) hops."""
    benchmark_size = 1500
    sim = Simulator(9, config=DhtConfig())
    hosts = sim.add_nodes(benchmark_size)
    sim.fill_tables()
    ok, hops = 0, []
    for i in range(30):
        origin, target = hosts[i * 41 % benchmark_size], hosts[(i * 97 + 13) % benchmark_size]
        op = sim.run_until_done(sim.start(origin, lambda n, now, t=target: n.find_node(now, t.node.id)))
        ok += op.result().closest[0].id == target.node.id
        hops.append(op.result().hops)
    assert ok == 30
    assert max(hops) <= math.ceil(math.log2(benchmark_size))


_TRACE_SCRIPT = """
from hyphal.dht.node import DhtConfig
from hyphal.secrets import SecretStore
from hyphal.signing import KeyPair
from hyphal.sim import Simulator
sim = Simulator(11, config=DhtConfig(k=8), loss=0.05)
stores = {}
sim.on_node.append(lambda h: stores.__setitem__(h.index, SecretStore(h.node, now=sim.now)))
hosts = sim.add_nodes(30)
sim.join_all(hosts)
owner = KeyPair(bytes(32))
sim.run_until_done(sim.start(hosts[1], lambda n, now: n.put_mutable(now, owner, b"x")))
sim.run_until_done(sim.start(hosts[2], lambda n, now: stores[2].put(now, owner, "u", b"s", version=1)))
sim.run_for(700)
print(sim.trace_digest)
"""


def test_same_seed_same_trace_across_processes() -> None:
    """Nothing depends on hash randomisation: two interpreters with other hash seeds agree."""
    import os
    import subprocess
    import sys

    def digest(hash_seed: str) -> str:
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        out = subprocess.run(
            [sys.executable, "-c", _TRACE_SCRIPT],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return out.stdout.strip()

    first = digest("1")
    assert len(first) == 64
    assert digest("2") == first


def test_dead_nodes_cost_a_few_round_trips_not_seconds() -> None:
    import statistics

    sim, hosts = build(150, seed=21)

    def lookups(count: int) -> tuple[list[float], int]:
        latencies, timeouts = [], 0
        for i in range(count):
            target = sim.rng.randbytes(32)
            op = sim.run_until_done(sim.start(hosts[i], lambda n, now, t=target: n.find_node(now, t)))
            assert op.latency is not None
            latencies.append(op.latency)
            timeouts += op.result().timeouts
        return latencies, timeouts

    healthy, _ = lookups(20)
    for h in sim.rng.sample(hosts[20:], 45):  # 30% of the network, none of the askers
        sim.crash(h)
    degraded, timeouts = lookups(20)
    assert timeouts > 20
    # Per-node timeouts of a few RTTs: dead nodes roughly double a lookup, they don't add seconds.
    assert statistics.median(degraded) < 3 * statistics.median(healthy)
    assert max(degraded) < sim.config.max_timeout


def test_two_nodes_the_only_holder_reads_its_own_store() -> None:
    sim, (a, b) = build(2, seed=5)
    owner = KeyPair(b"\x0e" * 32)
    put = sim.run_until_done(sim.start(a, lambda n, now: n.put_immutable(now, b"only on b")))
    assert put.result().stored == 1
    key = put.result().key
    got = sim.run_until_done(sim.start(b, lambda n, now: n.get_immutable(now, key)))
    assert got.result().value == b"only on b"
    sim.run_until_done(sim.start(a, lambda n, now: n.put_mutable(now, owner, b"m1")))
    got_m = sim.run_until_done(sim.start(b, lambda n, now: n.get_mutable(now, owner.public_key)))
    signed = got_m.result().signed_value
    assert signed is not None
    assert (signed.seq, signed.value) == (1, b"m1")
