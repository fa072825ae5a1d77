"""The replicated secret store, built on a DhtNode's extension points (docs/PROTOCOL.md §11.10).

A secret lives on the ``replicas`` (default 5) nodes XOR-closest to its id
(:func:`~hyphal.secrets.records.secret_id`), as the owner-signed, sealed
:class:`~hyphal.secrets.records.SecretRecord`.

Server side (:class:`SecretStore` attached to a node):

- ``SECRET_REQUEST`` (client → node): a signed :class:`SecretRequest`. The
  node refuses it unless it is addressed to this node, its timestamp is
  within ``skew`` of the node's clock, its (requester, nonce) was never seen
  (nonces are kept in the node's record store for twice the skew, so the
  window survives restarts with a persistent store), and the requester may
  do the operation: the owner puts, updates and deletes; the owner and the
  ACL's readers read.
- ``SECRET_REPLICATE`` (node → node): a signed record pushed by a holder.
  Records are self-authenticating and a version never goes back, so pushes
  need no envelope.
- ``SECRET_PULL`` (node → node): "push me what I am now responsible for".

Rebalancing: a holder pushes each secret to every node of its responsible
set (the ``replicas`` closest live nodes it knows, itself included) that has
not confirmed the current version. It does so when a client stores a new
version with it, when a node enters its routing table, on a pull, and every
``interval`` after checking that the nodes of its responsible sets are
alive, so a holder that left is replaced by the next closest node. A holder
that is no longer among the 2n closest drops its copy once every responsible
node has confirmed the version. In a network smaller than ``replicas`` every
node holds every secret.

What it costs, and why it stays correct:

- A confirmation is per secret version *and* per incarnation of the holder
  (the seq of the node record it answered with, which grows when its process
  restarts), so a holder that restarted with an empty store is pushed again.
  A node that pushes us the version we hold has it too: that confirms it.
- The liveness check pings only the peers we have not heard from (any
  answer, or a request from their address) for ``interval``: a dead holder
  is still pinged, within two intervals of its last message, fails, leaves
  every responsible set, and the next closest node gets the secret.
- A copy received from another holder is pushed on by the periodic
  rebalance, not at once: the pusher covers the responsible set it sees, and
  the holders that push the same copy meanwhile are confirmed, not pushed.

Joining and leaving: :meth:`SecretStore.pull` asks the nearest nodes to push
what a node that just joined is now responsible for;
:meth:`SecretStore.hand_off` pushes everything a node that is about to leave
holds to the nodes responsible for it without that node, and ends when each
push was answered (or timed out).

Client side: :meth:`SecretStore.put`, :meth:`SecretStore.get` (and
:meth:`SecretStore.read`, with the record) and :meth:`SecretStore.delete`
look up the secret id and talk to the closest node that answers, falling
back to the next closest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from hyphal import _core
from hyphal.dht.messages import Method, Response, Status
from hyphal.dht.node import DhtNode, Reply, RequestContext
from hyphal.dht.operation import LookupResult, Operation
from hyphal.dht.record_store import StoredRecord
from hyphal.dht.records import Addr, NodeRecord
from hyphal.dht.routing import Contact
from hyphal.errors import DecodeError, NotAvailable, SeqConflict, Unauthorized, VerificationError
from hyphal.secrets.records import Op, SecretRecord, SecretRequest, locator, secret_id
from hyphal.signing import KeyPair

_T = TypeVar("_T")

SECRET_REQUEST = 64
SECRET_REPLICATE = 65
SECRET_PULL = 66
KIND_SECRET = 16
KIND_NONCE = 17
FOREVER = 1e18
TOMBSTONE_TTL = 30 * 86400.0


@dataclass(slots=True)
class Handoff:
    """What :meth:`SecretStore.hand_off` did."""

    secrets: int = 0
    """Secrets (and tombstones) this node held."""
    pushed: int = 0
    """Pushes to nodes that become responsible and had not confirmed our version."""
    acknowledged: int = 0
    """Pushes the receiver answered (it holds that version, or a newer one)."""
    already: int = 0
    """Nodes that become responsible and had confirmed our version: not pushed again."""


class SecretStore:
    """Serve and use the secret store on ``node``. See the module docstring."""

    def __init__(
        self, node: DhtNode, *, now: float, replicas: int = 5, skew: float = 300.0, interval: float = 300.0
    ) -> None:
        self.node = node
        self.replicas = replicas
        self.skew = skew
        self.interval = interval
        self._confirmed: dict[bytes, dict[bytes, int]] = {}
        """Per secret held: node id -> seq of that node's record when it confirmed our version."""
        self._pushing: set[tuple[bytes, bytes]] = set()
        self._held: set[bytes] = {r.key for r in node.store.records() if r.kind == KIND_SECRET}
        self._records: dict[bytes, SecretRecord] = {}
        self.refused: dict[str, int] = {}
        node.register_handler(SECRET_REQUEST, self._handle_request)
        node.register_handler(SECRET_REPLICATE, self._handle_replicate)
        node.register_handler(SECRET_PULL, self._handle_pull)
        node.on_new_contact.append(self._on_new_contact)
        # The first round comes after 0.5 to 1.5 intervals: nodes started together do not check
        # each other in lockstep (two peers checking at once both ping; staggered, one ping
        # answers for both, see _maintenance).
        phase = 0.5 + int.from_bytes(node.random_bytes(4), "little") / 2**32
        node.call_at(now + phase * interval, self._maintenance)

    # -- what this node holds ------------------------------------------------------------

    @property
    def held(self) -> set[bytes]:
        """Ids of the secrets (and tombstones) this node holds."""
        return set(self._held)

    def record(self, sid: bytes) -> SecretRecord | None:
        """The version held of secret ``sid`` (verified when it was stored or first read back)."""
        cached = self._records.get(sid)
        if cached is not None:
            return cached
        row = self.node.store.get_one(KIND_SECRET, sid)
        if row is None:
            return None
        try:
            record = self._records[sid] = SecretRecord.decode(row.value)
        except (DecodeError, VerificationError):  # a damaged row is dropped, never served
            self.node.store.delete(KIND_SECRET, sid)
            self._held.discard(sid)
            return None
        return record

    def _accept(self, now: float, record: SecretRecord, source: NodeRecord | None = None) -> tuple[int, int]:
        """Store ``record`` if it is newer: (status, version held afterwards).

        ``source`` is the holder that pushed it (None for a client's write,
        which is pushed on at once; a pushed copy waits for the periodic
        rebalance, see the module docstring).
        """
        sid = record.id
        held = self.record(sid)
        if held is not None and held.version >= record.version:
            same = held.version == record.version and held.encoded == record.encoded
            if same and source is not None:
                self._confirm(sid, source)
            return (Status.OK if same else Status.SEQ_TOO_OLD), held.version
        expires = now + TOMBSTONE_TTL if record.deleted else FOREVER
        self.node.store.put(StoredRecord(KIND_SECRET, sid, b"", record.version, record.encoded, expires))
        self._records[sid] = record
        self._held.add(sid)
        self._confirmed[sid] = {} if source is None else {source.id: source.seq}
        if source is None:
            self._rebalance(now, sid, record)
        return Status.OK, record.version

    def _confirm(self, sid: bytes, holder: NodeRecord) -> None:
        """``holder`` (this incarnation of it) holds the version of ``sid`` we hold."""
        confirmed = self._confirmed.get(sid)
        if confirmed is not None and sid in self._held:
            confirmed[holder.id] = holder.seq

    def _offer(self, now: float, sid: bytes, holder: NodeRecord, addr: Addr) -> bool:
        """Push our version of ``sid`` to ``holder`` unless it confirmed it; True if it had."""
        if self._confirmed.get(sid, {}).get(holder.id) == holder.seq:
            return True
        record = self.record(sid)
        if record is not None:
            self._push(now, record, holder.id, addr)
        return False

    # -- placement --------------------------------------------------------------------------

    def responsible(self, sid: bytes, extra: Contact | None = None) -> list[bytes]:
        """Ids of the ``replicas`` closest live nodes we know to ``sid``, ourselves included."""
        return self._nearest(sid, self.replicas, None if extra is None else extra.id)

    def _nearest(self, sid: bytes, count: int, extra: bytes | None = None) -> list[bytes]:
        """Ids of the ``count`` nodes nearest ``sid`` among us, ``extra`` and the live table entries
        (those whose last request did not fail), nearest first."""
        ids = [c.record.id for c in self.node.table.closest(sid, count + 8) if c.failures == 0]
        ids.append(self.node.id)
        if extra is not None and extra not in ids:
            ids.append(extra)
        return [ids[i] for i in _core.xor_closest(sid, b"".join(ids), count)]

    def _rebalance(self, now: float, sid: bytes, record: SecretRecord | None = None) -> None:
        record = record or self.record(sid)
        if record is None:
            return
        table = self.node.table
        confirmed = self._confirmed.setdefault(sid, {})
        for nid in [nid for nid in confirmed if nid not in table]:  # gone: it confirms nothing now
            del confirmed[nid]
        settled = True
        for nid in self.responsible(sid):
            contact = table.get(nid)
            if contact is not None and self._offer(now, sid, contact.record, contact.addr) is False:
                settled = False
        if settled and self._surplus(sid):
            # Every node responsible confirmed this version, and we are far down the list: our copy
            # is surplus. (Between the n and 2n closest we keep it, as a buffer against departures
            # not detected yet.)
            self.node.store.delete(KIND_SECRET, sid)
            self._held.discard(sid)
            self._records.pop(sid, None)
            self._confirmed.pop(sid, None)

    def _surplus(self, sid: bytes) -> bool:
        """More than 2n live nodes known, and we are not among the 2n nearest ``sid``."""
        near = self._nearest(sid, 2 * self.replicas + 1)
        return len(near) > 2 * self.replicas and self.node.id not in near[: 2 * self.replicas]

    def _push(self, now: float, record: SecretRecord, nid: bytes, addr: Addr) -> None:
        sid = record.id
        if (sid, nid) in self._pushing:
            return
        self._pushing.add((sid, nid))
        op = self.node.request(now, addr, SECRET_REPLICATE, target=sid, payload=record.encoded, expect_id=nid)

        def done(o: Operation[tuple[Response, NodeRecord] | None]) -> None:
            self._pushing.discard((sid, nid))
            reply = o.result()
            if reply is None or reply[0].status not in (Status.OK, Status.SEQ_TOO_OLD):
                return
            held = self.record(sid)
            if held is not None and held.version == record.version:  # not replaced meanwhile
                self._confirm(sid, reply[1])

        op.on_done(done)

    def _on_new_contact(self, now: float, contact: Contact) -> None:
        for sid in sorted(self._held):
            if contact.id in self.responsible(sid):
                self._offer(now, sid, contact.record, contact.addr)

    def _maintenance(self, now: float) -> None:
        self.node.call_at(now + self.interval, self._maintenance)
        # Liveness of the nodes that share our secrets: a dead one fails its ping and drops out
        # of every responsible set, and the next closest node takes its place. A peer we heard
        # from within the interval was alive then; it is pinged at the next round if quiet.
        peers = {nid for sid in sorted(self._held) for nid in self.responsible(sid)}
        peers.discard(self.node.id)
        quiet_since = now - self.interval
        for nid in sorted(peers):
            contact = self.node.table.get(nid)
            if contact is not None and contact.last_heard <= quiet_since:
                self.node.request(now, contact.addr, Method.PING, expect_id=nid)
        self.node.call_at(now + 2 * self.node.config.max_timeout, self._rebalance_all)

    def _rebalance_all(self, now: float) -> None:
        for sid in sorted(self._held):
            if self.node.store.get_one(KIND_SECRET, sid) is None:  # an expired tombstone
                self._held.discard(sid)
                self._records.pop(sid, None)
                self._confirmed.pop(sid, None)
            else:
                self._rebalance(now, sid)

    def pull(self, now: float) -> Operation[int]:
        """Ask our nearest neighbours to push what we are now responsible for (after joining).

        The result is how many answered; their pushes follow the answer, each on its own."""
        op: Operation[int] = Operation("secret pull", now)
        asked = self.node.table.closest(self.node.id, self.replicas * 2)
        pending, answered = len(asked), 0

        def done(o: Operation[tuple[Response, NodeRecord] | None]) -> None:
            nonlocal pending, answered
            pending -= 1
            answered += o.error is None and o.result() is not None
            if pending == 0:
                op._finish(o.finished_at or now, answered)

        for c in asked:
            self.node.request(now, c.addr, SECRET_PULL, expect_id=c.id).on_done(done)
        if not asked:
            op._finish(now, 0)
        return op

    def hand_off(self, now: float) -> Operation[Handoff]:
        """Before leaving: push every secret held to the nodes responsible for it without us.

        Each secret has ``replicas`` places among the live nodes we know, nearest first. Each is
        pushed (a node that holds the version already says so, counted in ``already``), and
        a push nobody answers (the node left, and we have not noticed yet) passes its place on to
        the next nearest node. Every request ends (answered or timed out), so this does."""
        op: Operation[Handoff] = Operation("secret hand-off", now)
        report = Handoff()
        pending = 0
        started = False

        def settle(t: float) -> None:
            if started and pending == 0:
                op._finish(t, report)

        def fill(t: float, record: SecretRecord, queue: list[Contact]) -> None:
            """Fill one place with the nearest node left in ``queue``."""
            nonlocal pending
            # Every place is pushed, even one that confirmed this version before: that node may
            # be leaving too (two holders stopping one after the other each counted the other).
            while queue:
                contact = queue.pop(0)
                report.pushed += 1
                pending += 1
                sent = self.node.request(
                    t,
                    contact.addr,
                    SECRET_REPLICATE,
                    target=record.id,
                    payload=record.encoded,
                    expect_id=contact.id,
                )

                def done(o: Operation[tuple[Response, NodeRecord] | None]) -> None:
                    nonlocal pending
                    pending -= 1
                    t2 = o.finished_at or t
                    reply = None if o.error is not None else o.result()
                    if reply is not None and reply[0].status in (Status.OK, Status.SEQ_TOO_OLD):
                        report.acknowledged += 1
                        if reply[0].status == Status.SEQ_TOO_OLD:
                            report.already += 1
                    else:
                        fill(t2, record, queue)
                    settle(t2)

                sent.on_done(done)
                return

        for sid in sorted(self._held):
            record = self.record(sid)
            if record is None:
                continue
            report.secrets += 1
            queue = self._successors(sid)
            for _ in range(min(self.replicas, len(queue))):
                fill(now, record, queue)
        started = True
        settle(now)
        return op

    def _successors(self, sid: bytes) -> list[Contact]:
        """The live nodes we know, nearest ``sid`` first, ourselves left out (we are leaving)."""
        live = [c for c in self.node.table.closest(sid, self.replicas + 8) if c.failures == 0]
        live = [c for c in live if c.id != self.node.id]
        if not live:
            return []
        return [live[i] for i in _core.xor_closest(sid, b"".join(c.id for c in live), len(live))]

    # -- handlers ------------------------------------------------------------------------------

    def _refuse(self, why: str, status: int = Status.UNAUTHORIZED) -> Reply:
        self.refused[why] = self.refused.get(why, 0) + 1
        return Reply(status)

    def _parse(self, decode: Callable[[bytes], _T], raw: bytes, forged_status: int) -> _T | Reply:
        """Decode and verify, or the refusal to answer with (counted as malformed or forged)."""
        try:
            return decode(raw)
        except DecodeError:
            self.node.counters.malformed += 1
            return self._refuse("malformed", Status.BAD_RECORD)
        except VerificationError:
            self.node.counters.forged += 1
            return self._refuse("forged", forged_status)

    def _handle_request(self, ctx: RequestContext) -> Reply:
        req = self._parse(SecretRequest.decode, ctx.request.payload, Status.UNAUTHORIZED)
        if isinstance(req, Reply):
            return req
        if req.node_id != self.node.id:
            return self._refuse("other node")
        if abs(req.timestamp_ms / 1000 - ctx.now) > self.skew:
            return self._refuse("stale")
        if self.node.store.get_one(KIND_NONCE, req.requester, req.nonce) is not None:
            return self._refuse("replay")
        self.node.store.put(
            StoredRecord(KIND_NONCE, req.requester, req.nonce, 0, b"", ctx.now + 2 * self.skew)
        )
        if req.op == Op.GET:
            held = self.record(req.secret_id)
            if held is None:
                return Reply(Status.NOT_FOUND)
            if held.deleted:  # the signed tombstone, so the client stops instead of asking stale nodes
                return Reply(Status.NOT_FOUND, held.encoded)
            if not held.may_read(req.requester):
                return self._refuse("not a reader")
            return Reply(payload=held.encoded)
        try:
            record = SecretRecord.decode(req.body)
        except (DecodeError, VerificationError):
            return self._refuse("bad record", Status.BAD_RECORD)
        if record.owner != req.requester or record.id != req.secret_id:
            return self._refuse("not the owner")
        if record.deleted != (req.op == Op.DELETE):
            return self._refuse("bad record", Status.BAD_RECORD)
        status, version = self._accept(ctx.now, record)
        return Reply(status, version.to_bytes(8, "little"))

    def _handle_replicate(self, ctx: RequestContext) -> Reply:
        if ctx.sender is None:
            return self._refuse("client push")
        sid = ctx.request.target
        held = self.record(sid) if sid is not None and sid in self._held else None
        if held is not None and held.encoded == ctx.request.payload:
            # The very bytes we verified and hold: no need to check the signature again.
            if ctx.addr in ctx.sender.addresses:
                self._confirm(held.id, ctx.sender)
            return Reply(Status.OK, held.version.to_bytes(8, "little"))
        record = self._parse(SecretRecord.decode, ctx.request.payload, Status.BAD_RECORD)
        if isinstance(record, Reply):
            return record
        # Taken from any DHT node, without second-guessing its view of who is responsible: the
        # record is the owner's, and the node's record cap bounds what pushes can cost us.
        if len(self.node.store) >= self.node.config.max_records and record.id not in self._held:
            return self._refuse("full", Status.FULL)
        source = ctx.sender if ctx.addr in ctx.sender.addresses else None
        status, version = self._accept(ctx.now, record, source)
        return Reply(status, version.to_bytes(8, "little"))

    def _handle_pull(self, ctx: RequestContext) -> Reply:
        if ctx.sender is None or ctx.addr not in ctx.sender.addresses:
            return self._refuse("client pull")
        asker = Contact(ctx.sender, ctx.addr, ctx.now)
        for sid in sorted(self._held):
            if asker.id in self.responsible(sid, extra=asker):
                self._offer(ctx.now, sid, ctx.sender, ctx.addr)
        return Reply()

    # -- client side ------------------------------------------------------------------------------

    def put(
        self,
        now: float,
        owner: KeyPair,
        url: str,
        plaintext: bytes,
        *,
        readers: tuple[bytes, ...] = (),
        version: int | None = None,
    ) -> Operation[int]:
        """Seal and deploy a secret; the result is its version (default: milliseconds since the epoch)."""
        version = version or max(1, int(now * 1000))
        record = SecretRecord.seal(owner, url, version, plaintext, readers, self.node.random_bytes)
        return self._write(now, owner, record, Op.PUT)

    def delete(self, now: float, owner: KeyPair, url: str, *, version: int | None = None) -> Operation[int]:
        record = SecretRecord.tombstone(owner, url, version or max(1, int(now * 1000)))
        return self._write(now, owner, record, Op.DELETE)

    def get(self, now: float, reader: KeyPair, owner: bytes, url: str) -> Operation[bytes]:
        """Read and decrypt a secret of ``owner`` as ``reader`` (the owner or a key on its ACL)."""
        op: Operation[bytes] = Operation("secret get", now)

        def opened(o: Operation[tuple[SecretRecord, bytes]]) -> None:
            t = o.finished_at or now
            if o.error is not None:
                op._finish(t, error=o.error)
            else:
                op._finish(t, o.result()[1])

        self.read(now, reader, owner, url).on_done(opened)
        return op

    def read(
        self, now: float, reader: KeyPair, owner: bytes, url: str
    ) -> Operation[tuple[SecretRecord, bytes]]:
        """:meth:`get`, with the record it opened (its version and readers)."""
        sid = secret_id(owner, locator(url))
        op: Operation[tuple[SecretRecord, bytes]] = Operation("secret get", now)

        def answer(t: float, status: int, payload: bytes) -> bool:
            if status == Status.NOT_FOUND:
                if not payload:
                    return False
                try:
                    tombstone = SecretRecord.decode(payload)
                except (DecodeError, VerificationError):
                    return False  # a bogus tombstone proves nothing: ask the next node
                if tombstone.id != sid or not tombstone.deleted:
                    return False
                op._finish(t, error=NotAvailable("the secret was deleted"))
                return True
            if status == Status.UNAUTHORIZED:
                why = "this key is neither its owner nor one of its readers (or the clocks differ a lot)"
                op._finish(t, error=Unauthorized(f"secret read refused: {why}"))
                return True
            if status != Status.OK:
                op._finish(t, error=Unauthorized(f"secret read refused (status {status})"))
                return True
            try:
                record = SecretRecord.decode(payload)
                if record.id != sid:
                    raise VerificationError("the node answered with another secret")
                op._finish(t, (record, record.open(reader)))
            except (DecodeError, VerificationError) as e:
                op._finish(t, error=e)
            return True

        self._ask_closest(now, reader, sid, Op.GET, b"", op, answer)
        return op

    def _write(self, now: float, owner: KeyPair, record: SecretRecord, kind: Op) -> Operation[int]:
        op: Operation[int] = Operation("secret put" if kind == Op.PUT else "secret delete", now)

        def answer(t: float, status: int, payload: bytes) -> bool:
            if status == Status.OK:
                op._finish(t, record.version)
            elif status == Status.SEQ_TOO_OLD:
                op._finish(
                    t, error=SeqConflict(f"a newer version is stored: {int.from_bytes(payload, 'little')}")
                )
            else:
                op._finish(t, error=Unauthorized(f"secret write refused (status {status})"))
            return True

        self._ask_closest(now, owner, record.id, kind, record.encoded, op, answer)
        return op

    def _ask_closest(
        self,
        now: float,
        keypair: KeyPair,
        sid: bytes,
        kind: Op,
        body: bytes,
        op: Operation[Any],
        answer: Callable[[float, int, bytes], bool],
    ) -> None:
        """Look ``sid`` up, then ask the closest nodes in turn until ``answer`` says it is settled."""
        lookup = self.node.lookup_nodes(now, sid)

        def ask(t: float, candidates: list[tuple[NodeRecord, Addr]]) -> None:
            if not candidates:
                op._finish(t, error=NotAvailable("no node holds it (none of the closest nodes had a copy)"))
                return
            (record, addr), rest = candidates[0], candidates[1:]
            request = SecretRequest.sign(keypair, kind, sid, record.id, t, body, self.node.random_bytes)
            sent = self.node.request(
                t, addr, SECRET_REQUEST, target=sid, payload=request.encode(), expect_id=record.id
            )

            def done(o: Operation[tuple[Response, NodeRecord] | None]) -> None:
                reply = o.result()
                t2 = o.finished_at or t
                if reply is not None and answer(t2, reply[0].status, reply[0].payload):
                    return
                ask(t2, rest)

            sent.on_done(done)

        def found(o: Operation[LookupResult]) -> None:
            contacts = [(r, a) for r, a, _ in o.result().contacts][: self.replicas]
            ask(o.finished_at or now, contacts)

        lookup.on_done(found)


__all__ = [
    "KIND_NONCE",
    "KIND_SECRET",
    "SECRET_PULL",
    "SECRET_REPLICATE",
    "SECRET_REQUEST",
    "Handoff",
    "SecretStore",
]
