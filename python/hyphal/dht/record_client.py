"""The record client of a DHT node: putting and getting records on the k closest nodes.

:class:`RecordClient` layers BEP 44-style records on the routing-and-lookup
core (:mod:`hyphal.dht.core`): announces and topic lookups, immutable and
mutable records (with compare-and-swap), the repair of stale copies a get
meets, and republishing what this node put. The holder's side, which
stores records for others, is :mod:`hyphal.dht.holder`.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from hyphal.dht.config import DhtConfig
from hyphal.dht.core import DhtCore
from hyphal.dht.ids import immutable_key
from hyphal.dht.lookup import Candidate, Lookup
from hyphal.dht.messages import (
    MAX_VALUE_SIZE,
    Method,
    Response,
    Status,
    decode_announces,
    decode_optional_value,
    decode_seq,
    encode_mutable_put,
)
from hyphal.dht.operation import LookupResult, Operation, PutResult
from hyphal.dht.record_store import RecordKind, RecordStore, StoredRecord
from hyphal.dht.records import Addr, AnnounceRecord, NodeRecord
from hyphal.errors import DecodeError, InvalidInput, SeqConflict
from hyphal.signed_value import SignedValue, value_id
from hyphal.signing import KeyPair


@dataclass(slots=True)
class _Published:
    """A record this node put and puts again every ``interval``."""

    next_at: float
    interval: float
    put: Callable[[float], object]


class RecordClient(DhtCore):
    """A DHT core that also puts and gets records (see the module docstring)."""

    def __init__(
        self,
        keypair: KeyPair,
        addresses: Sequence[Addr],
        *,
        now: float,
        config: DhtConfig | None = None,
        store: RecordStore | None = None,
        rng: random.Random | None = None,
        record_seq: int | None = None,
    ) -> None:
        super().__init__(
            keypair, addresses, now=now, config=config, store=store, rng=rng, record_seq=record_seq
        )
        self._published: dict[tuple[int, bytes, bytes], _Published] = {}
        """What this node put and republishes, by (kind, key, sub)."""

    # announces

    def announce(
        self,
        now: float,
        keypair: KeyPair,
        topic: bytes,
        addresses: Sequence[Addr],
        ttl: int = 1200,
        *,
        republish: bool = True,
    ) -> Operation[PutResult]:
        """Sign and store "``keypair`` serves ``topic`` at ``addresses``" on the k closest nodes."""
        record = AnnounceRecord.sign(keypair, topic, int(now), ttl, tuple(addresses))
        if republish:
            interval = min(self.config.republish_interval, ttl / 2)
            self._published[(RecordKind.ANNOUNCE, topic, keypair.public_key)] = _Published(
                now + interval,
                interval,
                lambda t: self.announce(t, keypair, topic, addresses, ttl, republish=False),
            )
        return self._put(now, "announce", topic, Method.LOOKUP, Method.ANNOUNCE, lambda: record.encoded)

    def unannounce(self, topic: bytes, public_key: bytes) -> None:
        """Stop republishing an announce (holders drop it when its TTL ends)."""
        self._published.pop((RecordKind.ANNOUNCE, topic, public_key), None)

    def lookup(self, now: float, topic: bytes) -> Operation[LookupResult]:
        """Find the peers announced for ``topic``: the newest valid announce of each, newest first
        (those this node holds for others included: the lookup never asks this node)."""
        found: dict[bytes, AnnounceRecord] = {}

        def on_reply(t: float, c: Candidate, resp: Response) -> None:
            try:
                raw = decode_announces(resp.payload)
            except DecodeError:
                self.counters.malformed += 1
                return
            take(t, raw)

        def take(t: float, raw: list[bytes]) -> None:
            for item in raw:
                a = self.counters.verified(AnnounceRecord.decode, item)
                if a is None or a.topic != topic or a.expires <= t:
                    if a is not None and a.topic != topic:
                        self.counters.forged += 1
                    continue
                old = found.get(a.public_key)
                if old is None or a.issued_at > old.issued_at:
                    found[a.public_key] = a

        op: Operation[LookupResult] = Operation("lookup", now)
        take(now, [row.value for row in self.store.get(RecordKind.ANNOUNCE, topic) if row.expires > now])

        def done(t: float, lk: Lookup) -> None:
            result = self._result(lk)
            result.announces = sorted(found.values(), key=lambda a: -a.issued_at)
            op._finish(t, result)

        self._lookup(now, topic, Method.LOOKUP, on_reply=on_reply, on_done=done)
        return op

    # immutable records

    def put_immutable(self, now: float, value: bytes, *, republish: bool = True) -> Operation[PutResult]:
        """Store ``value`` (at most 1000 bytes) under ``BLAKE3(value)`` on the k closest nodes."""
        if len(value) > MAX_VALUE_SIZE:
            raise InvalidInput(f"an immutable value is at most {MAX_VALUE_SIZE} bytes")
        key = immutable_key(value)
        if republish:
            self._published[(RecordKind.IMMUTABLE, key, b"")] = _Published(
                now + self.config.republish_interval,
                self.config.republish_interval,
                lambda t: self.put_immutable(t, value, republish=False),
            )
        return self._put(now, "put_immutable", key, Method.GET_IMMUTABLE, Method.PUT_IMMUTABLE, lambda: value)

    def get_immutable(self, now: float, key: bytes) -> Operation[LookupResult]:
        """Find the value stored under ``key``; the result's ``value`` is None when nobody had it.

        A copy this node holds for others answers at once: the lookup excludes this node, so
        without it a holder (in a two-node DHT, the only one) would ask everyone but itself.
        """
        op: Operation[LookupResult] = Operation("get_immutable", now)
        row = self.store.get_one(RecordKind.IMMUTABLE, key)
        if row is not None and row.expires > now and immutable_key(row.value) == key:
            op._finish(now, LookupResult(key, [], value=row.value))
            return op
        found: list[bytes] = []

        def on_reply(t: float, c: Candidate, resp: Response) -> None:
            try:
                value = decode_optional_value(resp.payload)
            except DecodeError:
                self.counters.malformed += 1
                return
            if value is None or found:
                return
            if immutable_key(value) != key:
                self.counters.forged += 1
                return
            found.append(value)
            run.lookup.finish()

        def done(t: float, lk: Lookup) -> None:
            result = self._result(lk)
            result.value = found[0] if found else None
            op._finish(t, result)

        run = self._lookup(now, key, Method.GET_IMMUTABLE, on_reply=on_reply, on_done=done)
        return op

    # mutable records

    def put_mutable(
        self,
        now: float,
        keypair: KeyPair,
        value: bytes,
        *,
        salt: bytes = b"",
        cas: int | None = None,
        republish: bool = True,
    ) -> Operation[PutResult]:
        """Sign ``value`` with the next seq and store it on the k closest nodes (BEP 44).

        The seq is one more than the highest valid seq the closest nodes hold.
        With ``cas`` the put is a compare-and-swap: it ends with
        :class:`~hyphal.errors.SeqConflict` when the highest seq found is not
        ``cas`` (0 for "no value yet") or when every holder reports a mismatch.
        """
        key = value_id(keypair.public_key, salt)
        op: Operation[PutResult] = Operation("put_mutable", now)
        latest = self._collect_mutable(now, key)

        def after_get(t: float, lk: Lookup) -> None:
            best = latest.best
            current = 0 if best is None else best.seq
            if cas is not None and cas != current:
                op._finish(t, error=SeqConflict(f"compare-and-swap failed: seq is {current}, not {cas}"))
                return
            try:
                signed = SignedValue.sign(keypair, current + 1, value, salt)
            except InvalidInput as e:
                op._finish(t, error=e)
                return
            if republish:
                self._publish_mutable(t, signed)
            result = PutResult(key, seq=signed.seq)
            payload = encode_mutable_put(signed.encode(), cas)
            self._store_on(t, lk.closest_answered(), Method.PUT_MUTABLE, key, payload, op, result, cas=cas)

        self._lookup(now, key, Method.GET_MUTABLE, on_reply=latest.on_reply, on_done=after_get)
        return op

    def put_signed(
        self, now: float, signed: SignedValue, *, cas: int | None = None, republish: bool = True
    ) -> Operation[PutResult]:
        """Store an already signed value (say, from a :class:`SignedValueFeed`) on the k closest nodes."""
        signed.verify()
        if republish:
            self._publish_mutable(now, signed)
        payload = encode_mutable_put(signed.encode(), cas)
        return self._put(
            now, "put_signed", signed.id, Method.GET_MUTABLE, Method.PUT_MUTABLE, lambda: payload, cas=cas
        )

    def get_mutable(self, now: float, public_key: bytes, salt: bytes = b"") -> Operation[LookupResult]:
        """The highest valid seq this node and the closest nodes hold (``signed_value``), repairing
        stale copies (this node's own too, if it holds one)."""
        key = value_id(public_key, salt)
        op: Operation[LookupResult] = Operation("get_mutable", now)
        latest = self._collect_mutable(now, key)

        def done(t: float, lk: Lookup) -> None:
            result = self._result(lk)
            best = result.signed_value = latest.best
            if best is not None and self.config.repair_on_get:
                result.repaired = self._repair(t, lk, key, best, latest.seqs)
                self._repair_local(t, key, best)
            op._finish(t, result)

        self._lookup(now, key, Method.GET_MUTABLE, on_reply=latest.on_reply, on_done=done)
        return op

    def _publish_mutable(self, now: float, signed: SignedValue) -> None:
        interval = self.config.republish_interval
        self._published[(RecordKind.MUTABLE, signed.id, b"")] = _Published(
            now + interval, interval, lambda t: self.put_signed(t, signed, republish=False)
        )

    def stop_publishing(self, kind: int, key: bytes, sub: bytes = b"") -> None:
        self._published.pop((kind, key, sub), None)

    def _collect_mutable(self, now: float, key: bytes) -> _MutableCollector:
        """A collector that starts from the copy this node holds for others, if any: the lookup
        excludes this node, and a holder must not read (or put over) an older seq than its own."""
        latest = _MutableCollector(self, key)
        row = self.store.get_one(RecordKind.MUTABLE, key)
        if row is not None and row.expires > now:
            latest.offer(row.value)
        return latest

    def _repair_local(self, now: float, key: bytes, best: SignedValue) -> None:
        row = self.store.get_one(RecordKind.MUTABLE, key)
        if row is not None and row.seq < best.seq:
            expires = now + self.config.record_ttl
            self.store.put(StoredRecord(RecordKind.MUTABLE, key, b"", best.seq, best.encode(), expires))

    def _repair(self, now: float, lk: Lookup, key: bytes, best: SignedValue, seqs: dict[bytes, int]) -> int:
        payload = encode_mutable_put(best.encode(), None)
        repaired = 0
        for c in lk.closest_answered():
            if seqs.get(c.id, 0) < best.seq and c.token:
                repaired += 1
                self._send_request(
                    now,
                    c.addr,
                    Method.PUT_MUTABLE,
                    target=key,
                    token=c.token,
                    payload=payload,
                    expect_id=c.id,
                    on_reply=lambda t, r, rec: None,
                    on_timeout=lambda t: None,
                )
        return repaired

    # storing on the closest nodes

    def _put(
        self,
        now: float,
        kind: str,
        key: bytes,
        get_method: int,
        put_method: int,
        payload: Callable[[], bytes],
        *,
        cas: int | None = None,
    ) -> Operation[PutResult]:
        op: Operation[PutResult] = Operation(kind, now)

        def after_get(t: float, lk: Lookup) -> None:
            self._store_on(t, lk.closest_answered(), put_method, key, payload(), op, PutResult(key), cas=cas)

        self._lookup(now, key, get_method, on_done=after_get)
        return op

    def _store_on(
        self,
        now: float,
        holders: list[Candidate],
        method: int,
        key: bytes,
        payload: bytes,
        op: Operation[PutResult],
        result: PutResult,
        *,
        cas: int | None = None,
    ) -> None:
        waiting = len(holders)
        """Holders that neither answered nor timed out."""
        late = [False] * len(holders)
        """Per holder: its request timed out, but a late answer still counts (until max_timeout)."""

        def finish(t: float) -> None:
            if op.done:
                return
            if cas is not None and result.stored == 0 and result.conflicts:
                op._finish(t, error=SeqConflict(f"compare-and-swap failed: holders have {result.conflicts}"))
            else:
                op._finish(t, result)

        def settle(t: float) -> None:
            # Every holder answered or timed out. If none stored it yet, the put waits for late answers:
            # a busy process (a GC pause, a loaded core) reads replies after their timers fired, and
            # the holders did store the value.
            if waiting == 0 and (result.stored > 0 or not any(late)):
                finish(t)

        def replied(t: float, resp: Response, _responder: NodeRecord, *, i: int) -> None:
            nonlocal waiting
            if op.done:
                return
            if late[i]:
                late[i] = False
                result.timeouts -= 1
            else:
                waiting -= 1
            if resp.status == Status.OK:
                result.stored += 1
            else:
                result.refused[resp.status] = result.refused.get(resp.status, 0) + 1
                if resp.status in (Status.CAS_MISMATCH, Status.SEQ_TOO_OLD):
                    try:
                        result.conflicts.append(decode_seq(resp.payload))
                    except DecodeError:
                        self.counters.malformed += 1
            settle(t)

        def timed_out(t: float, *, i: int) -> None:
            nonlocal waiting
            waiting -= 1
            late[i] = True
            result.timeouts += 1
            settle(t)

        if not holders:
            finish(now)
            return
        for i, c in enumerate(holders):
            self._send_request(
                now,
                c.addr,
                method,
                target=key,
                token=c.token,
                payload=payload,
                expect_id=c.id,
                on_reply=functools.partial(replied, i=i),
                on_timeout=functools.partial(timed_out, i=i),
                late_ok=True,
            )
        # The requests' hard timeout: no late answer is taken after it.
        self._call_at(now + self.config.max_timeout, finish)

    def _maintenance(self, now: float) -> None:
        super()._maintenance(now)
        for published in list(self._published.values()):
            if published.next_at <= now:
                published.next_at = now + published.interval
                published.put(now)

    def republish(self, now: float) -> list[Operation[object]]:
        """Put everything this node publishes again now: it has just found peers after being
        alone (its puts so far reached nobody), e.g. through the mainline bridge. Returns the puts."""
        started: list[Operation[object]] = []
        for published in list(self._published.values()):
            published.next_at = now + published.interval
            op = published.put(now)
            if isinstance(op, Operation):
                started.append(op)
        return started


class _MutableCollector:
    """Gathers the signed values a GET_MUTABLE lookup sees: the best one and each holder's seq."""

    __slots__ = ("best", "key", "node", "seqs")

    def __init__(self, node: DhtCore, key: bytes) -> None:
        self.node = node
        self.key = key
        self.best: SignedValue | None = None
        self.seqs: dict[bytes, int] = {}

    def on_reply(self, now: float, c: Candidate, resp: Response) -> None:
        if not resp.payload:
            return
        signed = self.offer(resp.payload)
        if signed is not None:
            self.seqs[c.id] = signed.seq

    def offer(self, encoded: bytes) -> SignedValue | None:
        """Consider one encoded value (a holder's answer, or this node's own copy); the value if it
        verifies under the expected id."""
        signed = self.node.counters.verified(SignedValue.decode_verified, encoded)
        if signed is None:
            return None
        if signed.id != self.key:
            self.node.counters.forged += 1
            return None
        validate = self.node.config.validate_mutable
        if (validate is None or validate(signed)) and (self.best is None or signed.seq > self.best.seq):
            self.best = signed
        return signed


__all__ = ["RecordClient"]
