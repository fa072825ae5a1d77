"""What a DHT node holds for others: the record methods' handlers, their storage rules, re-replication.

Every check runs before anything is stored (docs/PROTOCOL.md §11.3, §11.6):
tokens, signatures, keys, seq and compare-and-swap rules, expiry, caps. A
refused write stores nothing and answers with its status.

A holder also keeps what it holds alive as nodes come and go: a record
nobody put for ``replicate_interval`` is pushed to the closest nodes that
lack it (at most ``max_concurrent_replications`` lookups at a time).
"""

from __future__ import annotations

from collections import deque

from hyphal.dht.core import DhtCore
from hyphal.dht.ids import immutable_key
from hyphal.dht.lookup import Candidate, Lookup
from hyphal.dht.messages import (
    MAX_ANNOUNCES,
    MAX_VALUE_SIZE,
    Method,
    Response,
    Status,
    decode_announces,
    decode_mutable_put,
    decode_optional_value,
    encode_announces,
    encode_mutable_put,
    encode_optional_value,
    encode_seq,
)
from hyphal.dht.record_store import RecordKind, StoredRecord
from hyphal.dht.records import AnnounceRecord
from hyphal.dht.rpc import Handler, Reply, RequestContext
from hyphal.errors import DecodeError, VerificationError
from hyphal.signed_value import SignedValue


class RecordHolder:
    """The record methods' server side for ``node``, and re-replication of what it holds."""

    def __init__(self, node: DhtCore) -> None:
        self.node = node
        self.last_put: dict[tuple[int, bytes, bytes], float] = {}
        """When each held record was last put (by anyone): a record put recently needs no push."""
        self._replication_queue: deque[StoredRecord] = deque()
        self._replications_running = 0

    def handlers(self) -> dict[int, Handler]:
        return {
            Method.ANNOUNCE: self.announce,
            Method.LOOKUP: self.lookup,
            Method.PUT_IMMUTABLE: self.put_immutable,
            Method.GET_IMMUTABLE: self.get_immutable,
            Method.PUT_MUTABLE: self.put_mutable,
            Method.GET_MUTABLE: self.get_mutable,
        }

    def lookup(self, ctx: RequestContext) -> Reply:
        topic = ctx.request.target
        if topic is None:
            return Reply(Status.ERROR)
        rows = [r for r in self.node.store.get(RecordKind.ANNOUNCE, topic) if r.expires > ctx.now]
        rows.sort(key=lambda r: -r.seq)
        return Reply(
            payload=encode_announces([r.value for r in rows[:MAX_ANNOUNCES]]), nodes=True, token=True
        )

    def get_immutable(self, ctx: RequestContext) -> Reply:
        key = ctx.request.target
        if key is None:
            return Reply(Status.ERROR)
        row = self.node.store.get_one(RecordKind.IMMUTABLE, key)
        value = row.value if row is not None and row.expires > ctx.now else None
        return Reply(payload=encode_optional_value(value), nodes=True, token=True)

    def get_mutable(self, ctx: RequestContext) -> Reply:
        key = ctx.request.target
        if key is None:
            return Reply(Status.ERROR)
        row = self.node.store.get_one(RecordKind.MUTABLE, key)
        value = row.value if row is not None and row.expires > ctx.now else b""
        return Reply(payload=value, nodes=True, token=True)

    def _check_write(self, ctx: RequestContext, kind: int, key: bytes, sub: bytes = b"") -> Reply | None:
        if not ctx.token_ok():
            return Reply(Status.BAD_TOKEN)
        if (
            len(self.node.store) >= self.node.config.max_records
            and self.node.store.get_one(kind, key, sub) is None
        ):
            return Reply(Status.FULL)
        return None

    def _stored(self, now: float, row: StoredRecord) -> Reply:
        self.node.store.put(row)
        self.last_put[(row.kind, row.key, row.sub)] = now
        return Reply()

    def announce(self, ctx: RequestContext) -> Reply:
        topic = ctx.request.target
        if topic is None:
            return Reply(Status.ERROR)
        announce = self.node.counters.verified(AnnounceRecord.decode, ctx.request.payload)
        if announce is None or announce.topic != topic:
            return Reply(Status.BAD_RECORD)
        if announce.issued_at > ctx.now + self.node.config.max_clock_skew or announce.expires <= ctx.now:
            return Reply(Status.BAD_RECORD)
        refused = self._check_write(ctx, RecordKind.ANNOUNCE, topic, announce.public_key)
        if refused is not None:
            return refused
        rows = self.node.store.get(RecordKind.ANNOUNCE, topic)
        old = next((r for r in rows if r.sub == announce.public_key), None)
        if old is not None and old.seq >= announce.issued_at:
            return Reply()  # we hold this one or a newer one
        live = [r for r in rows if r.expires > ctx.now]
        if old is None and len(live) >= self.node.config.max_announces_per_topic:
            soonest = min(live, key=lambda r: r.expires)
            if soonest.expires >= announce.expires:
                return Reply(Status.FULL)
            self.node.store.delete(RecordKind.ANNOUNCE, topic, soonest.sub)
        row = StoredRecord(
            RecordKind.ANNOUNCE,
            topic,
            announce.public_key,
            announce.issued_at,
            announce.encoded,
            announce.expires,
        )
        return self._stored(ctx.now, row)

    def put_immutable(self, ctx: RequestContext) -> Reply:
        key, value = ctx.request.target, ctx.request.payload
        if key is None:
            return Reply(Status.ERROR)
        if len(value) > MAX_VALUE_SIZE:
            return Reply(Status.TOO_LARGE)
        if immutable_key(value) != key:
            self.node.counters.forged += 1
            return Reply(Status.BAD_RECORD)
        refused = self._check_write(ctx, RecordKind.IMMUTABLE, key)
        if refused is not None:
            return refused
        row = StoredRecord(RecordKind.IMMUTABLE, key, b"", 0, value, ctx.now + self.node.config.record_ttl)
        return self._stored(ctx.now, row)

    def put_mutable(self, ctx: RequestContext) -> Reply:
        key = ctx.request.target
        if key is None:
            return Reply(Status.ERROR)
        try:
            raw, cas = decode_mutable_put(ctx.request.payload)
        except DecodeError:
            self.node.counters.malformed += 1
            return Reply(Status.BAD_RECORD)
        signed = self.node.counters.verified(SignedValue.decode_verified, raw)
        if signed is None or signed.id != key:
            return Reply(Status.BAD_RECORD)
        validate = self.node.config.validate_mutable
        if validate is not None and not validate(signed):
            return Reply(Status.BAD_RECORD)
        refused = self._check_write(ctx, RecordKind.MUTABLE, key)
        if refused is not None:
            return refused
        old = self.node.store.get_one(RecordKind.MUTABLE, key)
        held = 0 if old is None or old.expires <= ctx.now else old.seq
        if cas is not None and cas != held:
            return Reply(Status.CAS_MISMATCH, encode_seq(held))
        if (
            old is not None
            and held
            and (signed.seq < held or (signed.seq == held and signed.encode() != old.value))
        ):
            return Reply(Status.SEQ_TOO_OLD, encode_seq(held))
        row = StoredRecord(
            RecordKind.MUTABLE, key, b"", signed.seq, signed.encode(), ctx.now + self.node.config.record_ttl
        )
        return self._stored(ctx.now, row)

    # -- re-replication -------------------------------------------------------------------

    def queue_replication(self, now: float) -> None:
        """Queue every replicated record nobody put for ``replicate_interval``, and start pushing them."""
        interval = self.node.config.replicate_interval
        queued = {(r.kind, r.key, r.sub) for r in self._replication_queue}
        last_put: dict[tuple[int, bytes, bytes], float] = {}
        for row in self.node.store.records():
            ident = (row.kind, row.key, row.sub)
            if row.kind not in _REPLICATED:
                continue
            last = last_put[ident] = self.last_put.get(ident, now)
            if now - last >= interval and ident not in queued:
                self._replication_queue.append(row)
                last_put[ident] = now
        self.last_put = last_put
        self._next_replication(now)

    def _next_replication(self, now: float) -> None:
        while (
            self._replication_queue
            and self._replications_running < self.node.config.max_concurrent_replications
        ):
            row = self._replication_queue.popleft()
            self._replications_running += 1
            self._replicate(now, row)

    def _replicate(self, now: float, row: StoredRecord) -> None:
        """Push a held record to the closest nodes that lack it (or hold an older version)."""
        get_method, put_method = _REPLICATED[row.kind]
        has: set[bytes] = set()

        def on_reply(t: float, c: Candidate, resp: Response) -> None:
            try:
                if row.kind == RecordKind.IMMUTABLE:
                    present = decode_optional_value(resp.payload) is not None
                elif row.kind == RecordKind.MUTABLE:
                    present = bool(resp.payload) and SignedValue.decode(resp.payload).seq >= row.seq
                else:
                    present = any(
                        AnnounceRecord.decode(a).public_key == row.sub for a in decode_announces(resp.payload)
                    )
            except (DecodeError, VerificationError):
                present = False
            if present:
                has.add(c.id)

        def done(t: float, lk: Lookup) -> None:
            self._replications_running -= 1
            payload = encode_mutable_put(row.value, None) if row.kind == RecordKind.MUTABLE else row.value
            for c in lk.closest_answered():
                if c.id not in has and c.token:
                    self.node._send_request(
                        t,
                        c.addr,
                        put_method,
                        target=row.key,
                        token=c.token,
                        payload=payload,
                        expect_id=c.id,
                        on_reply=lambda t2, r, rec: None,
                        on_timeout=lambda t2: None,
                    )
            self._next_replication(t)

        self.node._lookup(now, row.key, get_method, on_reply=on_reply, on_done=done)


_REPLICATED: dict[int, tuple[int, int]] = {
    # kind: (the method that finds holders and tells whether they have it, the method that stores it)
    RecordKind.IMMUTABLE: (Method.GET_IMMUTABLE, Method.PUT_IMMUTABLE),
    RecordKind.MUTABLE: (Method.GET_MUTABLE, Method.PUT_MUTABLE),
    RecordKind.ANNOUNCE: (Method.LOOKUP, Method.ANNOUNCE),
}

__all__ = ["RecordHolder"]
