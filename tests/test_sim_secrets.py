"""The replicated secret store in the simulator: placement, access, replay, churn."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyphal.dht import messages as m
from hyphal.dht.node import DhtConfig
from hyphal.dht.sqlite_records import SqliteRecordStore
from hyphal.errors import DecryptionError, NotAvailable, SeqConflict, Unauthorized
from hyphal.secrets import SecretRecord, SecretRequest, SecretStore, secret_id
from hyphal.secrets.records import Op, locator
from hyphal.secrets.secret_store import KIND_SECRET, SECRET_REQUEST
from hyphal.signing import KeyPair
from hyphal.sim import SimHost, Simulator
from hyphal.xor import xor_closest

OWNER = KeyPair(b"\x21" * 32)
FRIEND = KeyPair(b"\x22" * 32)
STRANGER = KeyPair(b"\x23" * 32)
URL = "https://api.example.com/v1"


class Net:
    def __init__(self, n: int, seed: int = 1, **kw: object) -> None:
        self.sim = Simulator(seed, config=DhtConfig(k=8, refresh_interval=3600), **kw)  # type: ignore[arg-type]
        self.stores: dict[int, SecretStore] = {}
        self.sim.on_node.append(self._attach)
        self.hosts = self.sim.add_nodes(n)
        self.sim.join_all(self.hosts)

    def _attach(self, host: SimHost) -> None:
        self.stores[host.index] = SecretStore(host.node, now=self.sim.now, replicas=5, interval=300)

    def run(self, host: SimHost, fn):  # type: ignore[no-untyped-def]
        return self.sim.run_until_done(
            self.sim.start(host, lambda node, now: fn(self.stores[host.index], now))
        )

    def deploy(self, url: str, settle: float) -> bytes:
        """The owner puts a secret at ``url`` through the first host; ``settle`` seconds later, its id."""
        assert self.run(self.hosts[0], lambda s, now: s.put(now, OWNER, url, b"x")).error is None
        self.sim.run_for(settle)
        return secret_id(OWNER.public_key, locator(url))

    def holders(self, sid: bytes) -> list[SimHost]:
        return [h for h in self.hosts if h.alive and sid in self.stores[h.index].held]

    def closest(self, sid: bytes, count: int = 5) -> set[bytes]:
        live = [h for h in self.hosts if h.alive]
        return {live[i].node.id for i in xor_closest(sid, [h.node.id for h in live], count)}


@pytest.fixture(scope="module")
def net() -> Net:
    return Net(60)


def test_put_lands_on_the_five_closest_and_owner_reads(net: Net) -> None:
    client = net.hosts[7]
    version = net.run(
        client, lambda s, now: s.put(now, OWNER, URL, b"api-key-1", readers=(FRIEND.public_key,))
    )
    assert version.result() > 0
    net.sim.run_for(5)
    sid = secret_id(OWNER.public_key, locator(URL))
    assert {h.node.id for h in net.holders(sid)} >= net.closest(sid)
    got = net.run(net.hosts[30], lambda s, now: s.get(now, OWNER, OWNER.public_key, URL))
    assert got.result() == b"api-key-1"
    # The ACL's reader reads too; a stranger is refused.
    assert (
        net.run(net.hosts[31], lambda s, now: s.get(now, FRIEND, OWNER.public_key, URL)).result()
        == b"api-key-1"
    )
    refused = net.run(net.hosts[32], lambda s, now: s.get(now, STRANGER, OWNER.public_key, URL))
    assert isinstance(refused.error, Unauthorized)


def test_holders_cannot_read_and_non_owners_cannot_write(net: Net) -> None:
    url = "https://mail.example.com"
    net.run(net.hosts[2], lambda s, now: s.put(now, OWNER, url, b"hunter2"))
    net.sim.run_for(5)
    sid = secret_id(OWNER.public_key, locator(url))
    for holder in net.holders(sid):
        row = holder.node.store.get_one(KIND_SECRET, sid)
        assert row is not None
        assert b"hunter2" not in row.value
        with pytest.raises(DecryptionError):
            SecretRecord.decode(row.value).open(KeyPair(b"\x00" * 31 + bytes([holder.index % 256])))
    # A stranger's own record has another id: it can neither update nor delete the owner's.
    forged_update = net.run(net.hosts[3], lambda s, now: s.put(now, STRANGER, url, b"evil"))
    assert forged_update.done
    stranger_delete = net.run(net.hosts[3], lambda s, now: s.delete(now, STRANGER, url))
    assert stranger_delete.done
    assert (
        net.run(net.hosts[4], lambda s, now: s.get(now, OWNER, OWNER.public_key, url)).result() == b"hunter2"
    )
    # A stranger replaying the owner's signed record under its own request is refused.
    holder = net.holders(sid)[0]
    record = SecretRecord.decode(holder.node.store.get_one(KIND_SECRET, sid).value)  # type: ignore[union-attr]
    request = SecretRequest.sign(STRANGER, Op.DELETE, sid, holder.node.id, net.sim.now, record.encoded)
    op = net.sim.run_until_done(
        net.sim.start(
            net.hosts[5],
            lambda n, now: n.request(now, holder.addr, SECRET_REQUEST, target=sid, payload=request.encode()),
        )
    )
    assert op.result()[0].status == m.Status.UNAUTHORIZED  # type: ignore[index]
    # Old versions never come back; deleting works for the owner only.
    stale = net.run(net.hosts[6], lambda s, now: s.put(now, OWNER, url, b"old", version=1))
    assert isinstance(stale.error, SeqConflict)
    assert net.run(net.hosts[6], lambda s, now: s.delete(now, OWNER, url)).error is None
    net.sim.run_for(5)
    gone = net.run(net.hosts[8], lambda s, now: s.get(now, OWNER, OWNER.public_key, url))
    assert isinstance(gone.error, NotAvailable)
    assert "deleted" in str(gone.error)


def _send(net: Net, sender: SimHost, to: SimHost, request: SecretRequest) -> int:
    op = net.sim.run_until_done(
        net.sim.start(
            sender,
            lambda n, now: n.request(
                now, to.addr, SECRET_REQUEST, target=request.secret_id, payload=request.encode()
            ),
        )
    )
    reply = op.result()
    assert reply is not None
    return reply[0].status


def test_replayed_stale_and_misdirected_requests_are_refused(net: Net) -> None:
    url = "https://replay.example.com"
    net.run(net.hosts[9], lambda s, now: s.put(now, OWNER, url, b"x"))
    net.sim.run_for(5)
    sid = secret_id(OWNER.public_key, locator(url))
    holder, other = net.holders(sid)[:2]
    request = SecretRequest.sign(OWNER, Op.GET, sid, holder.node.id, net.sim.now)
    assert _send(net, net.hosts[10], holder, request) == m.Status.OK
    assert _send(net, net.hosts[11], holder, request) == m.Status.UNAUTHORIZED  # replayed
    assert _send(net, net.hosts[11], other, request) == m.Status.UNAUTHORIZED  # meant for another node
    old = SecretRequest.sign(OWNER, Op.GET, sid, holder.node.id, net.sim.now - 1000)
    assert _send(net, net.hosts[12], holder, old) == m.Status.UNAUTHORIZED  # outside the skew window
    refused = net.stores[holder.index].refused
    assert refused["replay"] >= 1
    assert refused["stale"] >= 1
    assert net.stores[other.index].refused["other node"] >= 1


def test_nonce_window_survives_a_restart(tmp_path: Path) -> None:
    net = Net(12, seed=2, store_factory=lambda i: SqliteRecordStore(str(tmp_path / f"n{i}.db")))
    url = "https://restart.example.com"
    net.run(net.hosts[0], lambda s, now: s.put(now, OWNER, url, b"persist"))
    net.sim.run_for(5)
    sid = secret_id(OWNER.public_key, locator(url))
    holder = net.holders(sid)[0]
    request = SecretRequest.sign(OWNER, Op.GET, sid, holder.node.id, net.sim.now)
    assert _send(net, net.hosts[1], holder, request) == m.Status.OK
    net.sim.run_until_done(net.sim.restart(holder, [h for h in net.hosts if h is not holder][:3]))
    assert sid in net.stores[holder.index].held  # the secret is still on disk
    assert _send(net, net.hosts[1], holder, request) == m.Status.UNAUTHORIZED


def test_small_network_every_node_holds_every_secret() -> None:
    net = Net(3, seed=3)
    net.run(net.hosts[0], lambda s, now: s.put(now, OWNER, URL, b"tiny"))
    net.sim.run_for(5)
    assert len(net.holders(secret_id(OWNER.public_key, locator(URL)))) == 3


def test_secrets_survive_churn() -> None:
    net = Net(80, seed=4)
    urls = [f"https://svc{i}.example.com" for i in range(25)]
    for i, url in enumerate(urls):
        op = net.run(net.hosts[i], lambda s, now, u=url, i=i: s.put(now, OWNER, u, f"secret {i}".encode()))
        assert op.error is None
    net.sim.run_for(10)
    # Six "hours": each replaces 10% of the nodes (crash 8, join 8 new), spread over the hour.
    for _hour in range(6):
        for _ in range(8):
            victim = net.sim.rng.choice([h for h in net.hosts if h.alive])
            net.sim.crash(victim)
            newcomer = net.sim.add_node()
            net.hosts.append(newcomer)
            via = net.sim.rng.sample([h for h in net.hosts if h.alive and h is not newcomer], 3)
            net.sim.run_until_done(net.sim.join(newcomer, via))
            net.stores[newcomer.index].pull(net.sim.now)
            net.sim.run_for(450)
    alive = [h for h in net.hosts if h.alive]
    for i, url in enumerate(urls):
        sid = secret_id(OWNER.public_key, locator(url))
        assert len(net.holders(sid)) >= 5
        got = net.run(alive[i], lambda s, now, u=url: s.get(now, OWNER, OWNER.public_key, u))
        assert got.result() == f"secret {i}".encode()


def _count_pushes(net: Net) -> list[int]:
    """Count the SECRET_REPLICATE requests every node receives (from now on)."""
    from hyphal.secrets.secret_store import SECRET_REPLICATE

    received = [0]
    for host in net.hosts:
        handler = host.node._handlers[SECRET_REPLICATE]

        def counting(ctx, handler=handler):  # type: ignore[no-untyped-def]
            received[0] += 1
            return handler(ctx)

        host.node._handlers[SECRET_REPLICATE] = counting
    return received


def test_confirmed_holders_are_not_pushed_again_but_a_restarted_one_is() -> None:
    net = Net(40, seed=5)
    sid = net.deploy("https://quiet.example.com", settle=700)  # two rounds: holders confirmed each other
    holders = net.holders(sid)
    assert {h.node.id for h in holders} >= net.closest(sid)
    pushes = _count_pushes(net)
    net.sim.run_for(900)  # three more rounds, nothing changed: nothing is pushed
    assert pushes[0] == 0
    # A holder that is a new contact again (say, after an eviction) but confirmed: no push either.
    holder, other = holders[0], holders[1]
    contact = net.stores[other.index].node.table.get(holder.node.id)
    assert contact is not None
    net.sim.call(net.sim.now, lambda: net.stores[other.index]._on_new_contact(net.sim.now, contact), other)
    net.sim.run_for(5)
    assert pushes[0] == 0
    # The holder restarts with an empty store (a new incarnation): it is pushed the secret again.
    net.sim.restart(holder, [h for h in net.hosts if h is not holder][:3])
    assert sid not in net.stores[holder.index].held
    pushes = _count_pushes(net)
    net.sim.run_for(700)
    assert sid in net.stores[holder.index].held
    assert pushes[0] > 0


def test_recently_heard_peers_are_not_pinged() -> None:
    net = Net(30, seed=6)
    sid = net.deploy("https://ping.example.com", settle=5)
    holder = net.holders(sid)[0]
    store, node = net.stores[holder.index], holder.node
    peers = [nid for nid in store.responsible(sid) if nid != node.id]
    now = net.sim.now
    for nid in peers:
        node.table.get(nid).last_heard = now - 10  # type: ignore[union-attr]
    quiet = peers[0]
    node.table.get(quiet).last_heard = now - 301  # type: ignore[union-attr]
    sent: list[tuple[bytes | None, int]] = []
    request = node.request

    def spy(now, addr, method, **kw):  # type: ignore[no-untyped-def]
        sent.append((kw.get("expect_id"), method))
        return request(now, addr, method, **kw)

    node.request = spy  # type: ignore[method-assign]
    net.sim.call(net.sim.now, lambda: store._maintenance(net.sim.now), holder)
    net.sim.run_for(0)
    assert [nid for nid, method in sent if method == m.Method.PING] == [quiet]


def test_a_dead_holder_is_replaced_within_two_rounds() -> None:
    net = Net(40, seed=7)
    sid = net.deploy("https://dead.example.com", settle=700)
    before = net.closest(sid)
    victim = next(h for h in net.hosts if h.node.id in before)
    net.sim.crash(victim)
    after = net.closest(sid)
    assert len(after - before) == 1
    # Pinged within two rounds of its last message, it fails, and the next closest node gets the copy.
    net.sim.run_for(2 * 300 + 30)
    assert {h.node.id for h in net.holders(sid)} >= after
