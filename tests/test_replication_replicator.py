"""The replication state machine: replicators wired together through a deterministic in-memory network."""

from __future__ import annotations

from collections import Counter

import pytest

from hyphal import _core
from hyphal.errors import InvalidInput
from hyphal.merkle import Proof, create_proof
from hyphal.replication import (
    Auth,
    Cancel,
    Data,
    DownloadDone,
    DropPeer,
    DropReason,
    Have,
    NoData,
    NoDataReason,
    Replicator,
    ReplicatorConfig,
    Request,
    Send,
    Serve,
    SetTimer,
    Store,
    Sync,
    VerifyHead,
    capability_key,
    capability_mac,
    decode_message,
)
from replication_fakes import FakeFeed, FakeHead, Sim, Site, blocks_for

BLOCK = 1000
# Small replies (4 blocks) so a 100-block feed takes many requests.
CONFIG = ReplicatorConfig(target_reply_bytes=4 * BLOCK, request_timeout=5.0)


def writer_with(count: int, seed: int = 1) -> FakeFeed:
    feed = FakeFeed.writer(seed)
    feed.append(blocks_for(count, BLOCK))
    return feed


def headed_reader(feed: FakeFeed) -> FakeFeed:
    """A reader that has verified the writer's head (and its nodes) but holds no blocks."""
    reader = feed.clone()
    reader.blocks = {}
    return reader


def requests_between(sim: Sim, src: str, dst: str) -> list[Request]:
    return [m for m in sim.messages(src, dst, Request) if isinstance(m, Request)]


def assert_replica_of(reader: FakeFeed, writer: FakeFeed, blocks: range | None = None) -> None:
    expected = range(writer.length) if blocks is None else blocks
    assert {i: reader.blocks[i] for i in expected} == {i: writer.blocks[i] for i in expected}


def no_block_requested_twice(sim: Sim, requester: str) -> None:
    counts = Counter(
        i
        for w in sim.wire
        if w.src == requester and isinstance(w.message, Request)
        for i in range(w.message.start, w.message.end)
    )
    cancelled = {w.message.id for w in sim.wire if w.src == requester and isinstance(w.message, Cancel)}
    assert not cancelled, "this scenario should not need cancels"
    assert set(counts.values()) <= {1}


# -- downloads ----------------------------------------------------------------------------


def test_full_download() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(100), CONFIG)
    reader = sim.add("R", writer.feed.reader(), CONFIG)
    sim.connect("R", "W")
    handle, actions = reader.replicator.download(0, 100)
    sim.perform(reader, actions)
    sim.run()
    assert reader.done == [handle]
    assert reader.feed.length == 100
    assert reader.replicator.length == 100
    assert_replica_of(reader.feed, writer.feed)
    assert reader.feed.head == writer.feed.head
    no_block_requested_twice(sim, "R")
    # Replies are about target_reply_bytes: 4 blocks each, so 25 requests.
    requests = requests_between(sim, "R", "W")
    assert [(r.start, r.end) for r in requests] == [(i, i + 4) for i in range(0, 100, 4)]
    assert not reader.drops
    assert not writer.drops


def test_first_messages_wait_for_auth() -> None:
    sim = Sim()
    sim.add("W", writer_with(3), CONFIG)
    sim.add("R", FakeFeed.writer().reader(), CONFIG)
    sim.connect("R", "W")
    # Before anything is delivered, each side has sent only its AUTH.
    assert [type(w.message) for w in sim.wire] == [Auth, Auth]
    sim.run()
    kinds = [type(m) for m in sim.messages("W", "R")]
    assert kinds[:3] == [Auth, Sync, Have]


def test_range_download_fetches_only_that_range() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(100), CONFIG)
    reader = sim.add("R", writer.feed.reader(), CONFIG)
    sim.connect("R", "W")
    handle, actions = reader.replicator.download(40, 50)
    sim.perform(reader, actions)
    sim.run()
    assert reader.done == [handle]
    assert sorted(reader.feed.blocks) == list(range(40, 50))
    assert_replica_of(reader.feed, writer.feed, range(40, 50))
    assert reader.replicator.length == 100  # the first reply upgraded it
    # The first request carries the upgrade from 0; the others wait for it and then need none.
    requested = [(r.start, r.end, r.upgrade_from, r.length) for r in requests_between(sim, "R", "W")]
    assert requested == [(40, 44, 0, 100), (44, 48, 100, 100), (48, 50, 100, 100)]


def test_sparse_reader_gets_exactly_the_block_and_the_one_node_it_lacks() -> None:
    writer_feed = FakeFeed.writer()
    writer_feed.append(blocks_for(9, BLOCK))
    reader_feed = writer_feed.clone()  # holds blocks 0-8, verified length 9
    writer_feed.append(blocks_for(2, BLOCK, salt=1))  # now 11 blocks
    sim = Sim()
    writer = sim.add("W", writer_feed, CONFIG)
    reader = sim.add("R", reader_feed, CONFIG)
    sim.connect("R", "W")
    sim.run()
    assert reader.replicator.length == 9
    handle, actions = reader.replicator.download(10, 11)
    sim.perform(reader, actions)
    sim.run()
    assert reader.done == [handle]
    [request] = requests_between(sim, "R", "W")
    assert (request.start, request.end, request.upgrade_from, request.length) == (10, 11, 9, 11)
    [data] = [m for m in sim.messages("W", "R", Data) if isinstance(m, Data)]
    assert [bytes(b) for b in data.blocks] == [writer.feed.blocks[10]]
    proof = Proof.decode(data.proof)
    # The only node the reader lacks is block 9's leaf (flat index 18).
    assert [n.index for n in proof.nodes] == [18]
    assert proof.nodes[0] == writer.feed.nodes[18]
    assert (proof.length, proof.upgrade_from, proof.start, proof.end) == (11, 9, 10, 11)
    assert reader.feed.length == 11
    assert reader.feed.blocks[10] == writer.feed.blocks[10]
    assert 9 not in reader.feed.blocks


def test_live_updates_arrive_without_rejoining() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(10), CONFIG)
    reader = sim.add("R", writer.feed.reader(), CONFIG)
    sim.connect("R", "W")
    _, actions = reader.replicator.download(0)  # everything, including future blocks
    sim.perform(reader, actions)
    sim.run()
    assert_replica_of(reader.feed, writer.feed)
    for round_ in range(3):
        writer.feed.append(blocks_for(5, BLOCK, salt=round_ + 1))
        sim.local_changed("W")
        sim.run()
        assert reader.feed.length == writer.feed.length == 15 + 5 * round_
        assert_replica_of(reader.feed, writer.feed)
    assert len(sim.messages("R", "W", Auth)) == 1  # one connection throughout
    assert not reader.done  # a live download never finishes


def test_live_want_follows_the_head_without_fetching_blocks() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(10), CONFIG)
    reader = sim.add("R", writer.feed.reader(), CONFIG)
    sim.connect("R", "W")
    sim.perform(reader, reader.replicator.want(0))
    sim.run()
    assert reader.feed.length == 10
    assert not reader.feed.blocks
    writer.feed.append(blocks_for(3, BLOCK, salt=9))
    sim.local_changed("W")
    sim.run()
    assert reader.feed.length == 13
    assert reader.feed.head == writer.feed.head
    assert not reader.feed.blocks
    upgrades = requests_between(sim, "R", "W")
    assert [(r.start, r.end, r.upgrade_from, r.length) for r in upgrades] == [(0, 0, 0, 10), (10, 10, 10, 13)]


def test_reader_relays_heads_to_other_readers() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(10), CONFIG)
    relay = sim.add("A", writer.feed.clone(), CONFIG)
    leaf = sim.add("B", writer.feed.reader(), CONFIG)
    sim.connect("A", "W")
    sim.connect("B", "A")  # B never talks to the writer
    for site in (relay, leaf):
        _, actions = site.replicator.download(0)
        sim.perform(site, actions)
    sim.run()
    writer.feed.append(blocks_for(4, BLOCK, salt=5))
    sim.local_changed("W")
    sim.run()
    assert leaf.feed.length == 14
    assert_replica_of(leaf.feed, writer.feed)


def test_three_peers_share_the_load_and_faster_ones_get_more() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(400), CONFIG)
    sim.add("A", writer.feed.clone(), CONFIG)
    sim.add("B", writer.feed.clone(), CONFIG)
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "W", latency=0.01)
    sim.connect("X", "A", latency=0.02)
    sim.connect("X", "B", latency=0.02)
    handle, actions = reader.replicator.download(0, 400)
    sim.perform(reader, actions)
    sim.run()
    assert reader.done == [handle]
    assert_replica_of(reader.feed, writer.feed)
    no_block_requested_twice(sim, "X")
    served = {name: sum(r.end - r.start for r in requests_between(sim, "X", name)) for name in "WAB"}
    assert sum(served.values()) == 400
    assert min(served["A"], served["B"]) > 0, served
    assert served["W"] > served["A"] + served["B"], served


def test_equal_peers_get_about_equal_shares() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(1200), CONFIG)
    sim.add("A", writer.feed.clone(), CONFIG)
    sim.add("B", writer.feed.clone(), CONFIG)
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    for name in "WAB":
        sim.connect("X", name, latency=0.01)
    handle, actions = reader.replicator.download(0, 1200)
    sim.perform(reader, actions)
    sim.run()
    assert reader.done == [handle]
    served = [sum(r.end - r.start for r in requests_between(sim, "X", name)) for name in "WAB"]
    assert sum(served) == 1200
    # Only the last round, when work runs out, is uneven.
    assert max(served) - min(served) <= 1200 // 10, served


# -- bad peers ------------------------------------------------------------------------------


def corrupt_blocks(dst: str, data: bytes) -> list[bytes]:
    message = decode_message(data)
    if isinstance(message, Data) and message.blocks:
        first = bytearray(message.blocks[0])
        first[0] ^= 1
        return [Data(message.id, message.head, message.proof, (bytes(first), *message.blocks[1:])).encode()]
    return [data]


def test_bad_proof_drops_the_peer_and_stores_nothing_it_sent() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(40), CONFIG)
    liar = sim.add("M", writer.feed.clone(), CONFIG)
    liar.outgoing = corrupt_blocks
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "M", latency=0.001)  # the liar is faster, so it is asked first
    sim.connect("X", "W", latency=0.01)
    handle, actions = reader.replicator.download(0, 40)
    sim.perform(reader, actions)
    sim.run()
    assert [(d.peer_id, d.reason) for d in reader.drops] == [("M", DropReason.BAD_DATA)]
    assert reader.done == [handle]
    assert_replica_of(reader.feed, writer.feed)  # every stored block is the writer's
    assert "M" not in reader.replicator.peer_ids


def test_bad_head_drops_the_peer_before_any_request() -> None:
    def forge_head(dst: str, data: bytes) -> list[bytes]:
        message = decode_message(data)
        if isinstance(message, Sync) and message.head:
            head = FakeHead.decode(message.head)
            forged = FakeHead(head.fork, head.length + 5, head.byte_length, head.tree_hash, head.signature)
            return [Sync(message.fork, message.length + 5, forged.encode()).encode()]
        return [data]

    sim = Sim()
    writer = sim.add("W", writer_with(20), CONFIG)
    liar = sim.add("M", writer.feed.clone(), CONFIG)
    liar.outgoing = forge_head
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "M", latency=0.001)
    sim.connect("X", "W", latency=0.01)
    _, actions = reader.replicator.download(0, 20)
    sim.perform(reader, actions)
    sim.run()
    assert [(d.peer_id, d.reason) for d in reader.drops] == [("M", DropReason.BAD_HEAD)]
    assert not requests_between(sim, "X", "M")
    assert reader.feed.length == 20
    assert_replica_of(reader.feed, writer.feed)


def test_head_contradicting_its_sync_drops_the_peer() -> None:
    def lie_about_length(dst: str, data: bytes) -> list[bytes]:
        message = decode_message(data)
        if isinstance(message, Sync) and message.head:
            return [Sync(message.fork, message.length + 1, message.head).encode()]
        return [data]

    sim = Sim()
    writer = sim.add("W", writer_with(20), CONFIG)
    writer.outgoing = lie_about_length
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "W")
    sim.run()
    assert [(d.peer_id, d.reason) for d in reader.drops] == [("W", DropReason.BAD_HEAD)]


def test_unrequested_data_drops_the_peer_and_is_never_stored() -> None:
    def push_data(dst: str, data: bytes) -> list[bytes]:
        message = decode_message(data)
        if isinstance(message, Have):
            proof = create_proof(sim.sites["M"].feed.nodes.__getitem__, 20, 0, 1).encode()
            return [data, Data(12345, b"", proof, (sim.sites["M"].feed.blocks[0],)).encode()]
        return [data]

    sim = Sim()
    writer = sim.add("W", writer_with(20), CONFIG)
    liar = sim.add("M", writer.feed.clone(), CONFIG)
    liar.outgoing = push_data
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "M")
    sim.run()
    assert [(d.peer_id, d.reason) for d in reader.drops] == [("M", DropReason.UNREQUESTED_DATA)]
    assert not reader.stores
    assert not reader.feed.blocks


def test_data_for_another_range_drops_the_peer() -> None:
    def shift_range(dst: str, data: bytes) -> list[bytes]:
        message = decode_message(data)
        if isinstance(message, Data):
            feed = sim.sites["M"].feed
            proof = Proof.decode(message.proof)
            n = len(message.blocks)
            other = create_proof(feed.nodes.__getitem__, proof.length, n, 2 * n, proof.upgrade_from)
            blocks = tuple(feed.blocks[i] for i in range(n, 2 * n))
            return [Data(message.id, message.head, other.encode(), blocks).encode()]
        return [data]

    sim = Sim()
    writer = sim.add("W", writer_with(20), CONFIG)
    liar = sim.add("M", writer.feed.clone(), CONFIG)
    liar.outgoing = shift_range
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "M")
    _, actions = reader.replicator.download(0, 4)
    sim.perform(reader, actions)
    sim.run()
    assert [(d.peer_id, d.reason) for d in reader.drops] == [("M", DropReason.MISMATCHED_DATA)]
    assert not reader.stores
    assert not reader.feed.blocks


def test_wrong_auth_drops_both_ways_and_reveals_nothing() -> None:
    sim = Sim()
    sim.add("W", writer_with(20), CONFIG)
    sim.add("M", writer_with(20, seed=2), CONFIG)  # another feed: another capability key
    sim.connect("M", "W")
    sim.run()
    # W checks M's AUTH first and closes the channel, so M never gets to check W's.
    assert [(d.peer_id, d.reason) for d in sim.sites["W"].drops] == [("M", DropReason.BAD_AUTH)]
    assert [type(m) for m in sim.messages("W", "M")] == [Auth]
    assert sim.sites["M"].replicator.peer_ids == []


def test_reflected_auth_is_rejected() -> None:
    feed = writer_with(3)
    replicator = Replicator(feed.feed_key, **feed.state())  # type: ignore[arg-type]
    [send] = replicator.add_peer("P", b"h" * 32, is_initiator=True)
    assert isinstance(send, Send)
    actions = replicator.receive("P", send.data)  # our own AUTH, bounced back
    assert [a for a in actions if isinstance(a, DropPeer)] == [
        DropPeer("P", DropReason.BAD_AUTH, actions[0].detail)
    ]  # type: ignore[union-attr]


# -- re-requests --------------------------------------------------------------------------------


def test_no_data_leads_to_a_re_request_from_another_peer() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(40), CONFIG)
    sparse = sim.add("P", writer.feed.clone(), CONFIG)
    for i in range(20, 40):
        del sparse.feed.blocks[i]  # its storage lost them, but it still announces them
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "P", latency=0.001)
    sim.connect("X", "W", latency=0.01)
    handle, actions = reader.replicator.download(0, 40)
    sim.perform(reader, actions)
    sim.run()
    assert reader.done == [handle]
    assert_replica_of(reader.feed, writer.feed)
    refused = [m for m in sim.messages("P", "X", NoData) if isinstance(m, NoData)]
    assert refused
    assert all(m.reason == NoDataReason.NOT_AVAILABLE for m in refused)
    refused_ids = {m.id for m in refused}
    refused_blocks = {
        i for r in requests_between(sim, "X", "P") if r.id in refused_ids for i in range(r.start, r.end)
    }
    from_writer = {i for r in requests_between(sim, "X", "W") for i in range(r.start, r.end)}
    assert refused_blocks
    assert refused_blocks <= from_writer
    assert not reader.drops


def test_lost_peer_requests_go_to_another_peer() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(40), CONFIG)
    mute = sim.add("P", writer.feed.clone(), CONFIG)
    mute.serving = False
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "P", latency=0.001)
    sim.connect("X", "W", latency=0.01)
    handle, actions = reader.replicator.download(0, 40)
    sim.perform(reader, actions)
    sim.run(until=1.0)  # well before the request timeout
    assert reader.replicator.in_flight("P") > 0
    assert not reader.done
    sim.disconnect("X", "P")
    sim.run(until=2.0)
    assert reader.done == [handle]
    assert_replica_of(reader.feed, writer.feed)
    assert sim.now < CONFIG.request_timeout


def test_timed_out_requests_are_cancelled_and_asked_elsewhere() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(40), CONFIG)
    mute = sim.add("P", writer.feed.clone(), CONFIG)
    mute.serving = False
    reader = sim.add("X", writer.feed.reader(), CONFIG)
    sim.connect("X", "P", latency=0.001)
    sim.connect("X", "W", latency=0.01)
    handle, actions = reader.replicator.download(0, 40)
    sim.perform(reader, actions)
    sim.run(until=60.0)
    assert reader.done == [handle]
    assert_replica_of(reader.feed, writer.feed)
    timed_out = {m.id for m in sim.messages("X", "P", Cancel) if isinstance(m, Cancel)}
    assert timed_out == {r.id for r in requests_between(sim, "X", "P")}
    assert reader.replicator.window("P") == 1  # halved from its initial 2
    assert not reader.drops


# -- cancel ------------------------------------------------------------------------------------


def test_cancel_withdraws_in_flight_requests() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(100), CONFIG)
    writer.serving = False
    reader = sim.add("X", headed_reader(writer.feed), CONFIG)
    sim.connect("X", "W")
    handle, actions = reader.replicator.download(0, 100)
    sim.perform(reader, actions)
    sim.run(until=1.0)
    sent = {r.id for r in requests_between(sim, "X", "W")}
    assert len(sent) == CONFIG.initial_window
    sim.perform(reader, reader.replicator.cancel(handle))
    sim.run(until=100.0)
    assert {m.id for m in sim.messages("X", "W", Cancel) if isinstance(m, Cancel)} == sent
    assert {r.id for r in requests_between(sim, "X", "W")} == sent  # nothing new asked
    assert reader.replicator.in_flight("W") == 0
    assert not reader.done
    assert reader.timer is None


def test_cancel_keeps_requests_another_download_needs() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(100), CONFIG)
    writer.serving = False
    reader = sim.add("X", headed_reader(writer.feed), CONFIG)
    sim.connect("X", "W")
    first, actions = reader.replicator.download(0, 8)
    sim.perform(reader, actions)
    _, actions = reader.replicator.download(4, 8)
    sim.perform(reader, actions)
    sim.run(until=1.0)
    sim.perform(reader, reader.replicator.cancel(first))
    # [0, 4) is nobody's any more; [4, 8) still is.
    assert [(r.start, r.end) for r in requests_between(sim, "X", "W")] == [(0, 4), (4, 8)]
    [cancel] = [m for m in sim.messages("X", "W", Cancel) if isinstance(m, Cancel)]
    assert cancel.id == requests_between(sim, "X", "W")[0].id


def test_server_honours_cancel() -> None:
    feed = writer_with(20)
    config = ReplicatorConfig(max_concurrent_serves=1)
    server = Replicator(feed.feed_key, config=config, **feed.state())  # type: ignore[arg-type]
    client_auth = connect_raw(server, feed)
    assert client_auth
    actions = server.receive("C", Request(1, 0, 20, 0, 4, 20).encode())
    actions += server.receive("C", Request(2, 0, 20, 4, 8, 20).encode())
    assert [a.request_id for a in actions if isinstance(a, Serve)] == [1]  # one at a time
    assert server.receive("C", Cancel(2).encode()) == []  # queued: just forgotten
    server.receive("C", Cancel(1).encode())  # being built: its result is discarded
    proof = create_proof(feed.nodes.__getitem__, 20, 0, 4, 20).encode()
    after = server.served("C", 1, proof, [feed.blocks[i] for i in range(4)])
    assert not [a for a in after if isinstance(a, Send | Serve)]


def connect_raw(replicator: Replicator, feed: FakeFeed, peer: str = "C") -> bytes:
    """Open a channel to ``replicator`` by hand and authenticate as a peer that knows the feed."""
    handshake = b"x" * 32
    replicator.add_peer(peer, handshake, is_initiator=False)
    mac = capability_mac(capability_key(feed.feed_key), handshake, True)
    actions = replicator.receive(peer, Auth(mac).encode())
    assert not [a for a in actions if isinstance(a, DropPeer)]
    return mac


# -- windows ------------------------------------------------------------------------------------


def test_window_limits_are_respected_and_grow_with_success() -> None:
    config = ReplicatorConfig(target_reply_bytes=BLOCK, max_window=5, initial_window=2)
    sim = Sim()
    writer = sim.add("W", writer_with(120), config)
    reader = sim.add("X", writer.feed.reader(), config)
    sim.connect("X", "W", latency=0.05)
    handle, actions = reader.replicator.download(0, 120)
    sim.perform(reader, actions)
    # Count requests on the wire independently of the machine's own bookkeeping.
    sim.run()
    assert reader.done == [handle]
    outstanding, peak = set[int](), 0
    for w in sim.wire:
        if w.src == "X" and isinstance(w.message, Request):
            outstanding.add(w.message.id)
            peak = max(peak, len(outstanding))
        elif w.src == "W" and isinstance(w.message, Data | NoData):
            outstanding.discard(w.message.id)
    assert peak == config.max_window  # it grew from 2 to the cap and never beyond
    assert all(in_flight <= window <= config.max_window for in_flight, window in reader.window_checks)
    assert len(requests_between(sim, "X", "W")) == 120  # one block each


def test_request_window_limits_small_requests() -> None:
    # Two 1 KB blocks per request and a 1 MiB byte budget: only the request count limits.
    config = ReplicatorConfig(max_blocks_per_request=2, initial_window=3, max_window=3)
    sim = Sim()
    writer = sim.add("W", writer_with(40), config)
    writer.serving = False
    reader = sim.add("X", headed_reader(writer.feed), config)
    sim.connect("X", "W")
    _, actions = reader.replicator.download(0, 40)
    sim.perform(reader, actions)
    sim.run(until=1.0)
    assert [(r.start, r.end) for r in requests_between(sim, "X", "W")] == [(0, 2), (2, 4), (4, 6)]


def test_byte_window_limits_big_blocks() -> None:
    # 4 KB blocks, 2 KB target replies: one block per request, at most `window` requests.
    feed = FakeFeed.writer()
    feed.append(blocks_for(30, 4000))
    config = ReplicatorConfig(target_reply_bytes=2000, initial_window=3, max_window=3)
    sim = Sim()
    sim.add("W", feed, config).serving = False
    reader = sim.add("X", headed_reader(feed), config)
    sim.connect("X", "W")
    # The reader learns the block size from the head's byte length.
    _, actions = reader.replicator.download(0, 30)
    sim.perform(reader, actions)
    sim.run(until=1.0)
    sent = requests_between(sim, "X", "W")
    assert [(r.start, r.end) for r in sent] == [(0, 1)]


# -- forks ------------------------------------------------------------------------------------


def fork_scenario(reader_length: int, cut: int, added: int) -> tuple[Sim, Site, Site]:
    """A reader holding the first ``reader_length`` blocks follows a writer that truncates to ``cut``."""
    feed = writer_with(reader_length)
    reader_feed = feed.clone()
    feed.append(blocks_for(20 - reader_length, BLOCK, salt=3))  # the writer went on to 20 meanwhile
    feed.truncate_and_fork(cut)
    feed.append(blocks_for(added, BLOCK, salt=77))
    sim = Sim()
    writer = sim.add("W", feed, CONFIG)
    reader = sim.add("R", reader_feed, CONFIG)
    sim.connect("R", "W")
    _, actions = reader.replicator.download(0)
    sim.perform(reader, actions)
    sim.run()
    return sim, writer, reader


def test_fork_past_our_length_keeps_what_we_have() -> None:
    sim, writer, reader = fork_scenario(reader_length=12, cut=15, added=5)
    [fork] = reader.forks
    assert (fork.fork, fork.length, fork.upgrade_from) == (1, 20, 12)
    assert reader.feed.fork == reader.replicator.fork == 1
    assert_replica_of(reader.feed, writer.feed)
    # Blocks 0-11 were kept: only 12-19 were fetched after the fork.
    fetched = {i for r in requests_between(sim, "R", "W") if r.fork == 1 for i in range(r.start, r.end)}
    assert fetched == set(range(12, 20))
    assert not reader.drops
    assert not writer.drops


def test_fork_before_our_length_starts_over_without_blaming_anyone() -> None:
    _, writer, reader = fork_scenario(reader_length=12, cut=10, added=10)
    # Keeping 12 blocks fails (block 10 changed), so the reader asks again keeping nothing.
    assert [(f.fork, f.length, f.upgrade_from) for f in reader.forks] == [(1, 20, 12), (1, 20, 0)]
    assert reader.feed.fork == 1
    assert reader.feed.length == 20
    assert_replica_of(reader.feed, writer.feed)
    assert not reader.drops
    assert not writer.drops


def test_live_reader_follows_a_truncation() -> None:
    sim = Sim()
    writer = sim.add("W", writer_with(20), CONFIG)
    reader = sim.add("R", writer.feed.reader(), CONFIG)
    sim.connect("R", "W")
    _, actions = reader.replicator.download(0)
    sim.perform(reader, actions)
    sim.run()
    assert_replica_of(reader.feed, writer.feed)
    writer.feed.truncate_and_fork(10)
    writer.feed.append(blocks_for(5, BLOCK, salt=77))
    sim.local_changed("W")
    sim.run()
    assert [(f.fork, f.length, f.upgrade_from) for f in reader.forks] == [(1, 15, 0)]
    assert reader.feed.fork == reader.replicator.fork == 1
    assert reader.feed.length == 15
    assert_replica_of(reader.feed, writer.feed)
    assert not reader.drops
    assert not writer.drops


def test_a_bad_fork_proof_drops_the_peer() -> None:
    def garble_proofs(dst: str, data: bytes) -> list[bytes]:
        message = decode_message(data)
        if isinstance(message, Data) and message.head and not message.blocks:
            proof = bytearray(message.proof)
            proof[-12] ^= 1  # a node hash
            return [Data(message.id, message.head, bytes(proof), ()).encode()]
        return [data]

    feed = writer_with(12)
    reader_feed = feed.clone()
    feed.truncate_and_fork(12)
    feed.append(blocks_for(8, BLOCK, salt=5))
    sim = Sim()
    liar = sim.add("M", feed.clone(), CONFIG)
    liar.outgoing = garble_proofs
    reader = sim.add("R", reader_feed, CONFIG)
    sim.connect("R", "M")
    sim.run()
    assert [f.upgrade_from for f in reader.forks] == [12, 0]
    assert [(d.peer_id, d.reason) for d in reader.drops] == [("M", DropReason.BAD_DATA)]
    assert reader.feed.fork == 0
    assert reader.feed.length == 12


# -- the serving side and protocol violations --------------------------------------------------------


@pytest.fixture
def server() -> tuple[Replicator, FakeFeed]:
    feed = writer_with(20)
    replicator = Replicator(feed.feed_key, **feed.state())  # type: ignore[arg-type]
    connect_raw(replicator, feed)
    return replicator, feed


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (Request(1, 1, 20, 0, 4, 20), NoDataReason.WRONG_FORK),
        (Request(1, 0, 21, 0, 4, 21), NoDataReason.BEYOND_LENGTH),
        (Request(1, 0, 21, 0, 4, 0), NoDataReason.BEYOND_LENGTH),
    ],
)
def test_insane_requests_get_no_data(
    server: tuple[Replicator, FakeFeed], request_: Request, reason: NoDataReason
) -> None:
    replicator, _ = server
    actions = replicator.receive("C", request_.encode())
    assert [decode_message(a.data) for a in actions if isinstance(a, Send)] == [NoData(1, reason)]


def test_sparse_server_refuses_blocks_it_lacks() -> None:
    feed = writer_with(20)
    replicator = Replicator(feed.feed_key, length=20, head=feed.head, have=[(0, 10)])
    connect_raw(replicator, feed)
    actions = replicator.receive("C", Request(1, 0, 20, 8, 12, 20).encode())
    assert [decode_message(a.data) for a in actions if isinstance(a, Send)] == [
        NoData(1, NoDataReason.NOT_AVAILABLE)
    ]


def test_upgrade_requests_are_served_at_our_length_with_our_head(server: tuple[Replicator, FakeFeed]) -> None:
    replicator, feed = server
    actions = replicator.receive("C", Request(3, 0, 15, 0, 2, 10).encode())
    [serve] = [a for a in actions if isinstance(a, Serve)]
    assert (serve.length, serve.upgrade_from, serve.start, serve.end) == (20, 10, 0, 2)
    proof = create_proof(feed.nodes.__getitem__, 20, 0, 2, 10).encode()
    [send] = replicator.served("C", 3, proof, [feed.blocks[0], feed.blocks[1]])
    data = decode_message(send.data)  # type: ignore[union-attr]
    assert isinstance(data, Data)
    assert data.head == feed.head


def test_busy_server_says_so(server: tuple[Replicator, FakeFeed]) -> None:
    replicator, _ = server
    replies = []
    for i in range(70):
        for action in replicator.receive("C", Request(i, 0, 20, 0, 1, 20).encode()):
            if isinstance(action, Send):
                replies.append(decode_message(action.data))
    assert replies == [NoData(i, NoDataReason.BUSY) for i in range(64, 70)]


@pytest.mark.parametrize(
    "message",
    [
        b"\x06" + bytes(10),  # truncated REQUEST
        b"\xff",  # unknown type
        Auth(bytes(32)).encode(),  # a second AUTH
    ],
)
def test_malformed_messages_drop_the_peer(server: tuple[Replicator, FakeFeed], message: bytes) -> None:
    replicator, _ = server
    actions = replicator.receive("C", message)
    assert [(a.peer_id, a.reason) for a in actions if isinstance(a, DropPeer)] == [("C", DropReason.PROTOCOL)]
    assert replicator.peer_ids == []
    assert replicator.receive("C", Request(1, 0, 20, 0, 1, 20).encode()) == []  # forgotten


def test_reused_request_id_drops_the_peer() -> None:
    feed = writer_with(20)
    replicator = Replicator(feed.feed_key, config=ReplicatorConfig(max_concurrent_serves=1), **feed.state())  # type: ignore[arg-type]
    connect_raw(replicator, feed)
    replicator.receive("C", Request(1, 0, 20, 0, 1, 20).encode())
    actions = replicator.receive("C", Request(1, 0, 20, 1, 2, 20).encode())
    assert [a.reason for a in actions if isinstance(a, DropPeer)] == [DropReason.PROTOCOL]


def test_messages_before_auth_drop_the_peer() -> None:
    feed = writer_with(3)
    replicator = Replicator(feed.feed_key, **feed.state())  # type: ignore[arg-type]
    replicator.add_peer("C", b"x" * 32, is_initiator=False)
    actions = replicator.receive("C", Request(1, 0, 3, 0, 1, 3).encode())
    assert [a.reason for a in actions if isinstance(a, DropPeer)] == [DropReason.PROTOCOL]
    assert not [a for a in actions if isinstance(a, Serve)]


def test_head_is_verified_by_the_driver_and_a_failure_drops(server: tuple[Replicator, FakeFeed]) -> None:
    replicator, feed = server
    [verify] = [
        a for a in replicator.receive("C", Sync(0, 20, feed.head).encode()) if isinstance(a, VerifyHead)
    ]
    assert verify.head == feed.head
    actions = replicator.head_verified("C", feed.head, False, 20, 0)
    assert [a.reason for a in actions if isinstance(a, DropPeer)] == [DropReason.BAD_HEAD]


def test_timer_follows_the_earliest_deadline() -> None:
    feed = writer_with(20)
    reader = Replicator(feed.feed_key, length=20, head=feed.head, byte_length=20 * BLOCK, config=CONFIG)
    reader.tick(100.0)
    connect_raw(reader, feed)
    reader.receive("C", Sync(0, 20, feed.head).encode())
    reader.head_verified("C", feed.head, True, 20, 0, byte_length=20 * BLOCK)
    reader.receive("C", Have(((0, 20),)).encode())
    _, actions = reader.download(0, 20)
    assert [a for a in actions if isinstance(a, SetTimer)] == [SetTimer(100.0 + CONFIG.request_timeout)]
    actions = reader.tick(100.0 + CONFIG.request_timeout)
    cancels = [decode_message(a.data) for a in actions if isinstance(a, Send)]
    assert [type(m) for m in cancels if not isinstance(m, Request)] == [Cancel, Cancel]


def test_late_replies_to_cancelled_requests_are_ignored() -> None:
    feed = writer_with(20)
    reader = Replicator(feed.feed_key, length=20, head=feed.head, byte_length=20 * BLOCK, config=CONFIG)
    connect_raw(reader, feed)
    reader.receive("C", Sync(0, 20, feed.head).encode())
    reader.head_verified("C", feed.head, True, 20, 0)
    reader.receive("C", Have(((0, 20),)).encode())
    _, actions = reader.download(0, 20)
    first, second = [
        m for a in actions if isinstance(a, Send) and isinstance(m := decode_message(a.data), Request)
    ]
    reader.tick(CONFIG.request_timeout)  # both time out and are cancelled
    proof = create_proof(feed.nodes.__getitem__, 20, first.start, first.end).encode()
    late = Data(first.id, b"", proof, tuple(feed.blocks[i] for i in range(first.start, first.end)))
    for message in (late, NoData(second.id, NoDataReason.BUSY)):
        actions = reader.receive("C", message.encode())
        assert not [a for a in actions if isinstance(a, DropPeer | Store)]
    # A second reply to the same id is no longer late but unrequested.
    actions = reader.receive("C", late.encode())
    assert [a.reason for a in actions if isinstance(a, DropPeer)] == [DropReason.UNREQUESTED_DATA]


def test_a_reply_refused_because_we_forked_is_not_the_peers_fault() -> None:
    feed = writer_with(20)
    reader = Replicator(feed.feed_key, config=CONFIG)
    connect_raw(reader, feed)
    reader.receive("C", Sync(0, 20, feed.head).encode())
    reader.head_verified("C", feed.head, True, 20, 0, byte_length=20 * BLOCK)
    reader.receive("C", Have(((0, 20),)).encode())
    _, actions = reader.download(0, 4)
    [request] = [
        m for a in actions if isinstance(a, Send) and isinstance(m := decode_message(a.data), Request)
    ]
    proof = create_proof(feed.nodes.__getitem__, 20, 0, 4).encode()
    reply = Data(request.id, feed.head, proof, tuple(feed.blocks[i] for i in range(4)))
    [store] = [a for a in reader.receive("C", reply.encode()) if isinstance(a, Store)]
    reader.local_changed(0, 1, b"", [])  # we moved to fork 1 while the driver was storing
    actions = reader.data_stored("C", store.request_id, False, "fork changed")
    assert not [a for a in actions if isinstance(a, DropPeer)]
    assert reader.peer_ids == ["C"]


def test_request_size_comes_from_a_peer_head_byte_length() -> None:
    feed = writer_with(100)
    reader = Replicator(feed.feed_key, length=100, head=feed.head, config=CONFIG)
    for peer, byte_length in (("C", None), ("D", 100 * 500)):  # 500-byte blocks, as far as D says
        connect_raw(reader, feed, peer)
        reader.receive(peer, Sync(0, 100, feed.head).encode())
        reader.head_verified(peer, feed.head, True, 100, 0, byte_length=byte_length)
        reader.receive(peer, Have(((0, 100),)).encode())
    _, actions = reader.download(0, 100)
    sizes = {
        m.end - m.start
        for a in actions
        if isinstance(a, Send) and isinstance(m := decode_message(a.data), Request)
    }
    assert sizes == {CONFIG.target_reply_bytes // 500}


def test_events_validate_their_arguments() -> None:
    feed = writer_with(3)
    replicator = Replicator(feed.feed_key, **feed.state())  # type: ignore[arg-type]
    with pytest.raises(InvalidInput):
        replicator.download(5, 4)
    with pytest.raises(InvalidInput):
        replicator.local_changed(3, 0, b"", [(0, 3)])  # a non-empty feed needs its head
    with pytest.raises(InvalidInput):
        Replicator(bytes(31))
    replicator.add_peer("C", b"x" * 32, True)
    with pytest.raises(InvalidInput):
        replicator.add_peer("C", b"x" * 32, True)
    assert isinstance(DownloadDone(1), DownloadDone)
    assert _core.MAX_LENGTH == 2**62
