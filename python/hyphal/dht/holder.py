"""What a DHT node holds for others: the built-in request handlers and their storage rules.

Every check runs before anything is stored (docs/PROTOCOL.md §11.3, §11.6):
tokens, signatures, keys, seq and compare-and-swap rules, expiry, caps. A
refused write stores nothing and answers with its status.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal.dht.ids import immutable_key
from hyphal.dht.messages import (
    MAX_ANNOUNCES,
    MAX_VALUE_SIZE,
    Method,
    Status,
    decode_mutable_put,
    encode_announces,
    encode_optional_value,
    encode_seq,
)
from hyphal.dht.records import AnnounceRecord
from hyphal.dht.rpc import Handler, Reply, RequestContext
from hyphal.dht.store import RecordKind, StoredRecord
from hyphal.errors import DecodeError
from hyphal.signed_value import SignedValue

if TYPE_CHECKING:
    from hyphal.dht.node import DhtNode


class RecordHolder:
    """The built-in methods' server side for ``node``; ``last_put`` feeds re-replication."""

    def __init__(self, node: DhtNode) -> None:
        self.node = node
        self.last_put: dict[tuple[int, bytes, bytes], float] = {}

    def handlers(self) -> dict[int, Handler]:
        return {
            Method.PING: self.ping,
            Method.FIND_NODE: self.find_node,
            Method.ANNOUNCE: self.announce,
            Method.LOOKUP: self.lookup,
            Method.PUT_IMMUTABLE: self.put_immutable,
            Method.GET_IMMUTABLE: self.get_immutable,
            Method.PUT_MUTABLE: self.put_mutable,
            Method.GET_MUTABLE: self.get_mutable,
        }

    def ping(self, ctx: RequestContext) -> Reply:
        return Reply()

    def find_node(self, ctx: RequestContext) -> Reply:
        if ctx.request.target is None:
            return Reply(Status.ERROR)
        return Reply(nodes=True)

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


__all__ = ["RecordHolder"]
