"""A mainline DHT node's operations: BEP 5 peers and BEP 44 items on top of :class:`~.core.KrpcCore`.

Each operation starts a lookup and returns an
:class:`~hyphal.dht.operation.Operation` that ends with its result:

- :meth:`MainlineNode.get_peers` / :meth:`MainlineNode.announce_peer`;
- :meth:`MainlineNode.get_immutable` / :meth:`MainlineNode.put_immutable`;
- :meth:`MainlineNode.get_mutable` / :meth:`MainlineNode.put_mutable` (salt, seq, CAS).

A get returns only what verifies: an immutable value that hashes to its
target, a mutable item whose signature covers its salt, seq and value under
the key asked for. A mutable get never returns a lower seq than this node
has already seen for that target (a rolled-back copy is counted and
ignored). Puts go to the ``k`` closest nodes that gave a write token.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from hyphal.dht.operation import Operation
from hyphal.errors import DecodeError, InvalidInput, SeqConflict, SignatureError
from hyphal.mainline.core import KrpcCore, LookupResult
from hyphal.mainline.items import (
    MAX_SALT_SIZE,
    ImmutableItem,
    MutableItem,
    immutable_from_wire,
    mutable_target,
)
from hyphal.mainline.lookup import Candidate, Lookup
from hyphal.mainline.messages import CAS_MISMATCH, SEQ_TOO_OLD, Addr, Response, bencached, decode_peers
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.mainline")
SEEN_ITEMS = 4096
"""Newest mutable item per target remembered, so a later get never goes back in seq."""


@dataclass(slots=True)
class PeersResult:
    info_hash: bytes
    peers: list[Addr] = field(default_factory=list)
    lookup: LookupResult | None = None


@dataclass(slots=True)
class PutResult:
    target: bytes
    stored: int = 0
    """Nodes that accepted it."""
    errors: dict[int, int] = field(default_factory=dict)
    """KRPC error code -> how many nodes refused with it."""
    timeouts: int = 0
    seq: int | None = None


class MainlineNode(KrpcCore):
    """A mainline DHT node (see the module docstring and :class:`~.core.KrpcCore` for driving it)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seen: OrderedDict[bytes, MutableItem] = OrderedDict()

    # -- BEP 5 --------------------------------------------------------------------------------

    def find_node(self, now: float, target: bytes) -> Operation[LookupResult]:
        return self.lookup(now, target, "find_node", {b"target": target})

    def get_peers(self, now: float, info_hash: bytes) -> Operation[PeersResult]:
        """The peers announced for ``info_hash`` on the nodes nearest it."""
        _check_hash(info_hash)
        found: dict[Addr, None] = {}

        def on_reply(t: float, c: Candidate, r: Response, lk: Lookup) -> None:
            if b"values" in r.values:
                try:
                    found.update(dict.fromkeys(decode_peers(r.values[b"values"])))
                except DecodeError as e:
                    self.counters.malformed += 1
                    log.debug("malformed peers from %s: %s", c.addr, e)

        op: Operation[PeersResult] = Operation("mainline get_peers", now)
        lk = self.lookup(now, info_hash, "get_peers", {b"info_hash": info_hash}, on_reply=on_reply)
        lk.on_done(
            lambda o: op._finish(o.finished_at or now, PeersResult(info_hash, list(found), o.result()))
        )
        return op

    def announce_peer(self, now: float, info_hash: bytes, port: int | None = None) -> Operation[PutResult]:
        """Announce us as a peer of ``info_hash`` at ``port`` (None: the port our datagrams come from)."""
        _check_hash(info_hash)
        if port is not None and not 1 <= port <= 65535:
            raise InvalidInput("port must be in 1..65535")
        args: dict[bytes, Any] = {b"info_hash": info_hash}
        args.update({b"implied_port": 1, b"port": 1} if port is None else {b"port": port})
        lk = self.lookup(now, info_hash, "get_peers", {b"info_hash": info_hash})
        return self._write(now, lk, info_hash, "announce_peer", args)

    # -- BEP 44 immutable ----------------------------------------------------------------------

    def get_immutable(self, now: float, target: bytes) -> Operation[ImmutableItem | None]:
        _check_hash(target)
        found: list[ImmutableItem] = []

        def on_reply(t: float, c: Candidate, r: Response, lk: Lookup) -> None:
            if b"v" not in r.values or found:
                return
            item = self._checked(c.addr, lambda: immutable_from_wire(r.values, target))
            if item is not None:
                found.append(item)
                lk.finish()

        op: Operation[ImmutableItem | None] = Operation("mainline get immutable", now)
        held = self.store.get_immutable(target, now)
        lk = self.lookup(now, target, "get", {b"target": target}, on_reply=on_reply)
        lk.on_done(lambda o: op._finish(o.finished_at or now, found[0] if found else held))
        return op

    def put_immutable(self, now: float, value: object) -> Operation[PutResult]:
        """Store ``value`` (bencoded, at most 1000 bytes) at SHA-1 of its encoding."""
        item = ImmutableItem.of(value)
        target = item.target
        lk = self.lookup(now, target, "get", {b"target": target})
        return self._write(now, lk, target, "put", {b"v": bencached(item.v)})

    # -- BEP 44 mutable ------------------------------------------------------------------------

    def get_mutable(self, now: float, public_key: bytes, salt: bytes = b"") -> Operation[MutableItem | None]:
        """The newest verified item of ``public_key`` and ``salt``, or None."""
        if len(public_key) != 32 or len(salt) > MAX_SALT_SIZE:
            raise InvalidInput("a public key is 32 bytes and a salt at most 64")
        target = mutable_target(public_key, salt)
        best = self._collector(target, public_key, salt)
        op: Operation[MutableItem | None] = Operation("mainline get mutable", now)
        lk = self.lookup(now, target, "get", {b"target": target}, on_reply=best.on_reply)
        lk.on_done(lambda o: op._finish(o.finished_at or now, self._newest(target, best.item)))
        return op

    def put_mutable(
        self,
        now: float,
        keypair: KeyPair,
        value: object,
        *,
        salt: bytes = b"",
        seq: int | None = None,
        cas: int | None = None,
    ) -> Operation[PutResult]:
        """Sign ``value`` and put it at ``SHA1(public_key ‖ salt)``.

        ``seq`` defaults to one above the newest seq found (1 if none). With
        ``cas`` the nodes store it only if they hold exactly that seq; when no
        node stored it because of a CAS mismatch the operation fails with
        :class:`SeqConflict`.
        """
        if len(salt) > MAX_SALT_SIZE:
            raise InvalidInput(f"a salt is at most {MAX_SALT_SIZE} bytes")
        target = mutable_target(keypair.public_key, salt)
        best = self._collector(target, keypair.public_key, salt)
        if seq is not None:  # sign now: a bad value fails the call, not the operation
            MutableItem.sign(keypair, value, seq, salt)
        op: Operation[PutResult] = Operation("mainline put mutable", now)
        lk = self.lookup(now, target, "get", {b"target": target}, on_reply=best.on_reply)

        def found(o: Operation[LookupResult]) -> None:
            t = o.finished_at or now
            newest = self._newest(target, best.item)
            new_seq = seq if seq is not None else (newest.seq + 1 if newest is not None else 1)
            item = MutableItem.sign(keypair, value, new_seq, salt)
            # Checked here first, so a stale write never reaches a node that lacks the item (and
            # would take it); nodes that hold another seq refuse it themselves (301, 302).
            if newest is not None and cas is not None and newest.seq != cas:
                op._finish(
                    t, error=SeqConflict(f"compare-and-swap on seq {cas} lost: seq {newest.seq} is stored")
                )
                return
            if newest is not None and (
                new_seq < newest.seq or (new_seq == newest.seq and item.v != newest.v)
            ):
                op._finish(t, error=SeqConflict(f"seq {new_seq} is not above the stored seq {newest.seq}"))
                return
            args = item.wire()
            if cas is not None:
                args[b"cas"] = cas
            put = self._write(t, o, target, "put", args, seq=new_seq)

            def settled(p: Operation[PutResult]) -> None:
                result = p.result()
                if result.stored:
                    self._remember(item)
                if cas is not None and not result.stored and result.errors.get(CAS_MISMATCH):
                    op._finish(p.finished_at or t, error=SeqConflict(f"compare-and-swap on seq {cas} lost"))
                elif seq is not None and not result.stored and result.errors.get(SEQ_TOO_OLD):
                    op._finish(
                        p.finished_at or t, error=SeqConflict(f"seq {seq} is older than the stored one")
                    )
                else:
                    op._finish(p.finished_at or t, result)

            put.on_done(settled)

        lk.on_done(found)
        return op

    def put_item(self, now: float, item: MutableItem) -> Operation[PutResult]:
        """Put an item signed before (a refresh with the same seq, or one signed elsewhere)."""
        item.verify()
        lk = self.lookup(now, item.target, "get", {b"target": item.target})
        return self._write(now, lk, item.target, "put", item.wire(), seq=item.seq)

    # -- helpers --------------------------------------------------------------------------------

    def _checked(self, addr: Addr, make: Any) -> Any:
        try:
            return make()
        except SignatureError as e:
            self.counters.forged += 1
            log.debug("dropped a forged item from %s: %s", addr, e)
        except DecodeError as e:
            self.counters.malformed += 1
            log.debug("dropped a malformed item from %s: %s", addr, e)
        return None

    def _collector(self, target: bytes, public_key: bytes, salt: bytes) -> _Newest:
        return _Newest(self, target, public_key, salt)

    def _newest(self, target: bytes, found: MutableItem | None) -> MutableItem | None:
        seen = self._seen.get(target)
        if found is not None and (seen is None or found.seq > seen.seq):
            self._remember(found)
            return found
        if found is not None and seen is not None and found.seq < seen.seq:
            self.counters.rolled_back += 1
        return seen

    def _remember(self, item: MutableItem) -> None:
        seen = self._seen
        old = seen.pop(item.target, None)
        seen[item.target] = item if old is None or item.seq >= old.seq else old
        while len(seen) > SEEN_ITEMS:
            seen.popitem(last=False)

    def _write(
        self,
        now: float,
        lookup: Operation[LookupResult],
        target: bytes,
        method: str,
        args: dict[bytes, Any],
        *,
        seq: int | None = None,
    ) -> Operation[PutResult]:
        """Once ``lookup`` ends, send ``method`` with ``args`` and each node's token to the closest."""
        op: Operation[PutResult] = Operation(f"mainline {method}", now)
        result = PutResult(target, seq=seq)

        def start(o: Operation[LookupResult]) -> None:
            t = o.finished_at or now
            holders = [c for c in o.result().nodes if c.token is not None]
            waiting = len(holders)
            if not holders:
                op._finish(t, result)

            def one(t2: float, code: int | None) -> None:
                nonlocal waiting
                waiting -= 1
                if code is None:
                    result.timeouts += 1
                elif code >= 0:
                    result.errors[code] = result.errors.get(code, 0) + 1
                else:
                    result.stored += 1
                if waiting == 0:
                    op._finish(t2, result)

            for c in holders:
                self.query(
                    t,
                    c.addr,
                    method,
                    {**args, b"token": c.token},
                    expect_id=c.id,
                    on_reply=lambda t2, r: one(t2, -1),
                    on_fail=one,
                )

        lookup.on_done(start)
        return op


class _Newest:
    """Collects the newest verified mutable item a get lookup sees."""

    __slots__ = ("item", "node", "public_key", "salt", "target")

    def __init__(self, node: MainlineNode, target: bytes, public_key: bytes, salt: bytes) -> None:
        self.node = node
        self.target = target
        self.public_key = public_key
        self.salt = salt
        self.item: MutableItem | None = node.store.get_mutable(target, float("-inf"))

    def on_reply(self, now: float, c: Candidate, r: Response, lk: Lookup) -> None:
        if b"k" not in r.values and b"sig" not in r.values:
            return
        item: MutableItem | None = self.node._checked(
            c.addr, lambda: MutableItem.from_wire(r.values, self.salt)
        )
        if item is None:
            return
        if item.public_key != self.public_key:
            self.node.counters.forged += 1
            return
        if self.item is not None and item.seq < self.item.seq:
            self.node.counters.rolled_back += 1
        elif self.item is None or item.seq > self.item.seq:
            self.item = item


def _check_hash(value: bytes) -> None:
    if len(value) != 20:
        raise InvalidInput("an info-hash or target is 20 bytes")


__all__ = ["MainlineNode", "PeersResult", "PutResult"]
