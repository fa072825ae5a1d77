"""The routing table, the lookup state machine, RTT timeouts, tokens and rate limits, as units."""

from __future__ import annotations

import random
import struct
from functools import cache

from hyphal import _core
from hyphal.dht.limits import RateLimiter
from hyphal.dht.lookup import ANSWERED, FAILED, Lookup
from hyphal.dht.records import NodeRecord
from hyphal.dht.routing import RoutingTable
from hyphal.dht.rtt import RttEstimator
from hyphal.dht.tokens import TokenIssuer
from hyphal.signing import KeyPair
from hyphal.xor import bucket_index


@cache
def record(i: int) -> NodeRecord:
    key = KeyPair(_core.derive_key("test routing", struct.pack("<Q", i)))
    return NodeRecord.sign(key, 1, ((f"10.0.{i >> 8}.{i & 0xFF}", 7000),))


OWN = record(0).id


def brute_closest(target: bytes, records: list[NodeRecord], count: int) -> list[bytes]:
    return sorted(
        (r.id for r in records), key=lambda i: int.from_bytes(i, "big") ^ int.from_bytes(target, "big")
    )[:count]


def test_buckets_split_by_prefix_and_hold_k() -> None:
    table = RoutingTable(OWN, k=4)
    records = [record(i) for i in range(1, 300)]
    for r in records:
        table.seen(r, r.addresses[0], 1.0)
    assert table.bucket_count > 1
    assert max(table.bucket_sizes()) <= 4
    for c in table:
        index = min(bucket_index(OWN, c.id), table.bucket_count - 1)
        assert c.id in table
        assert table.get(c.id) is c
        assert index < table.bucket_count
    # The last bucket is the one nearest us; the far buckets are full.
    assert table.bucket_sizes()[0] == 4


def test_closest_matches_brute_force() -> None:
    table = RoutingTable(OWN, k=20)
    records = [record(i) for i in range(1, 60)]
    for r in records:
        table.seen(r, r.addresses[0], 1.0)
    rng = random.Random(3)
    members = [c.record for c in table]
    for _ in range(10):
        target = rng.randbytes(32)
        assert [c.id for c in table.closest(target, 8)] == brute_closest(target, members, 8)


def test_full_bucket_pings_before_evicting() -> None:
    table = RoutingTable(OWN, k=2)
    # Records in bucket 0 (first bit differs from ours) until it is full.
    far = [r for r in (record(i) for i in range(1, 200)) if bucket_index(OWN, r.id) == 0]
    for r in far[:2]:
        assert table.seen(r, r.addresses[0], 1.0) is None
    # Nearer nodes split the table, so bucket 0 (the far half) can no longer split.
    near = [r for r in (record(i) for i in range(1, 400)) if bucket_index(OWN, r.id) >= 1]
    for r in near[:3]:
        table.seen(r, r.addresses[0], 1.0)
    assert table.bucket_count >= 2
    oldest = far[0].id
    to_ping = table.seen(far[2], far[2].addresses[0], 2.0)
    assert to_ping is not None
    assert to_ping.id == oldest
    assert far[2].id not in table  # waits in the replacement cache
    table.evict(oldest)  # the ping failed
    assert oldest not in table
    assert far[2].id in table
    # A node that keeps failing is replaced once a replacement waits.
    to_ping = table.seen(far[3], far[3].addresses[0], 3.0)
    assert to_ping is not None
    victim = to_ping.id
    table.failed(victim)
    assert victim in table
    table.failed(victim)
    assert victim not in table
    assert far[3].id in table


def test_answering_again_refreshes_and_newer_record_wins() -> None:
    table = RoutingTable(OWN, k=4)
    r = record(5)
    table.seen(r, r.addresses[0], 1.0)
    key = KeyPair(_core.derive_key("test routing", struct.pack("<Q", 5)))
    newer = NodeRecord.sign(key, 2, (("10.9.9.9", 1),))
    table.seen(newer, ("10.9.9.9", 1), 5.0)
    contact = table.get(r.id)
    assert contact is not None
    assert contact.record.seq == 2
    assert contact.addr == ("10.9.9.9", 1)
    table.seen(r, r.addresses[0], 6.0)  # an older record does not roll it back
    assert table.get(r.id).record.seq == 2  # type: ignore[union-attr]


def test_stale_buckets_and_refresh_targets() -> None:
    table = RoutingTable(OWN, k=2, now=0.0)
    for i in range(1, 50):
        table.seen(record(i), record(i).addresses[0], 0.0)
    assert table.stale_buckets(100.0, 900.0) == []
    stale = table.stale_buckets(1000.0, 900.0)
    assert stale == list(range(table.bucket_count))
    rng = random.Random(0)
    target = table.refresh_target(stale[0], rng)
    table.touch(target, 1000.0)
    assert stale[0] not in table.stale_buckets(1000.0, 900.0)


def test_persisted_table_roundtrip_skips_forged() -> None:
    table = RoutingTable(OWN, k=20)
    for i in range(1, 30):
        table.seen(record(i), record(i).addresses[0], float(i))
    data = bytearray(table.encode())
    restored = RoutingTable.decode_records(bytes(data))
    assert {r.id for r in restored} == {c.id for c in table}
    data[-1] ^= 1  # break one signature: that record is skipped, the rest load
    assert len(RoutingTable.decode_records(bytes(data))) == len(restored) - 1


def test_lookup_state_machine_converges() -> None:
    """A lookup over a synthetic network where every node knows the whole network."""
    records = [record(i) for i in range(1, 120)]
    target = record(77).id
    lk = Lookup(target, k=8, alpha=3)
    lk.seed((r, r.addresses[0]) for r in records[:3])
    dead = {records[5].id, records[40].id}
    rounds = 0
    while not lk.done:
        batch = lk.next_queries()
        # alpha in flight until a round brings nothing closer; then all of the k closest at once
        assert len(batch) <= (3 if rounds == 0 else 8)
        assert lk.in_flight <= 8
        for c in batch:
            if c.id in dead:
                lk.failed(c)
                continue
            lk.learned(c, [(r, r.addresses[0]) for r in records if r.id in brute_closest(target, records, 8)])
            lk.answered(c, b"tok")
        rounds += 1
        assert rounds < 100
    closest = [c.id for c in lk.closest_answered()]
    expected = [i for i in brute_closest(target, records, 10) if i not in dead][:8]
    assert closest == expected
    assert all(c.state in (ANSWERED, FAILED) for c in lk.closest_answered())


def test_disjoint_paths_never_share_a_node() -> None:
    records = [record(i) for i in range(1, 100)]
    target = record(50).id
    lk = Lookup(target, k=8, alpha=2, paths=3)
    lk.seed((r, r.addresses[0]) for r in records[:6])
    asked: dict[bytes, int] = {}
    while not lk.done:
        for c in lk.next_queries():
            assert c.id not in asked
            asked[c.id] = c.path
            lk.learned(c, [(r, r.addresses[0]) for r in records])
            lk.answered(c)
    assert len(set(asked.values())) == 3


def test_rtt_timeouts_adapt() -> None:
    rtt = RttEstimator(min_timeout=0.01, max_timeout=2.0, initial_timeout=1.0)
    a, b = ("10.0.0.1", 1), ("10.0.0.2", 1)
    assert rtt.timeout(a) == 1.0
    for _ in range(20):
        rtt.sample(a, 0.02)
    assert 0.01 <= rtt.timeout(a) < 0.05
    # An unknown node gets a timeout from what the network looks like, not the initial second.
    assert rtt.timeout(b) < 0.1
    rtt.timed_out(a)
    assert rtt.timeout(a) > 0.02
    rtt.sample(a, 0.02)
    assert rtt.timeout(a) < 0.05


def test_tokens_bound_to_address_target_and_time() -> None:
    issuer = TokenIssuer(b"\x01" * 32, rotate=300)
    addr, target = ("10.0.0.1", 5), b"\x02" * 32
    token = issuer.issue(addr, target, 1000.0)
    assert issuer.check(token, addr, target, 1000.0)
    assert issuer.check(token, addr, target, 1000.0 + 300)  # the next epoch still takes it
    assert not issuer.check(token, addr, target, 1000.0 + 700)
    assert not issuer.check(token, ("10.0.0.2", 5), target, 1000.0)
    assert not issuer.check(token, addr, b"\x03" * 32, 1000.0)
    assert not TokenIssuer(b"\x09" * 32).check(token, addr, target, 1000.0)


def test_rate_limiter() -> None:
    limiter = RateLimiter(rate=10, burst=5, capacity=2)
    assert all(limiter.allow("a", 0.0) for _ in range(5))
    assert not limiter.allow("a", 0.0)
    assert limiter.allow("a", 0.2)  # refilled two
    limiter.allow("b", 0.2)
    limiter.allow("c", 0.2)  # "a" is forgotten: bounded memory
    assert all(limiter.allow("a", 0.2) for _ in range(5))


def test_a_request_from_an_entry_marks_it_heard_and_its_bucket_fresh() -> None:
    table = RoutingTable(OWN, k=4, now=0.0)
    r, other = record(7), record(8)
    table.seen(r, r.addresses[0], 1.0)
    table.failed(r.id)
    assert table.stale_buckets(5000.0, 900.0) == list(range(table.bucket_count))
    table.heard(r.id, ("10.66.0.1", 1), 5000.0)  # another address: not the entry's, ignored
    assert table.get(r.id).last_heard == 1.0  # type: ignore[union-attr]
    table.heard(other.id, other.addresses[0], 5000.0)  # not in the table: nothing
    assert other.id not in table
    table.heard(r.id, r.addresses[0], 5000.0)
    contact = table.get(r.id)
    assert contact is not None
    assert contact.last_heard == 5000.0
    # Only an answer proves it is reachable: the request neither un-fails nor "sees" it.
    assert contact.failures == 1
    assert contact.last_seen == 1.0
    assert table._bucket_of(r.id).last_changed == 5000.0
    # An answer counts as heard too.
    table.seen(r, r.addresses[0], 6000.0)
    assert table.get(r.id).last_heard == 6000.0  # type: ignore[union-attr]


def test_quiet_bucket_oldest() -> None:
    table = RoutingTable(OWN, k=4, now=0.0)
    far = [r for r in (record(i) for i in range(1, 200)) if bucket_index(OWN, r.id) == 0][:2]
    for t, r in enumerate(far):
        table.seen(r, r.addresses[0], float(t))
    probe = next(r for r in (record(i) for i in range(200, 400)) if bucket_index(OWN, r.id) == 0)
    assert table.quiet_bucket_oldest(probe.id, since=0.5) is None  # changed at t=1
    oldest = table.quiet_bucket_oldest(probe.id, since=1.0)
    assert oldest is not None
    assert oldest.id == far[0].id
