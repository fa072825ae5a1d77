"""The answering side of a mainline node: BEP 5's and BEP 44's queries in, response values out.

:func:`answer` is pure: it reads the node's table, tokens and store through
:class:`ServerState` and returns the response's values, or raises
:class:`QueryRefused` with the KRPC error to send. A put is stored only
after its token, size, salt and signature all check out.
"""

from __future__ import annotations

from typing import Any, Protocol

from hyphal.dht.tokens import TokenIssuer
from hyphal.errors import DecodeError, InvalidInput, SignatureError
from hyphal.mainline.items import MAX_SALT_SIZE, MAX_VALUE_SIZE, ImmutableItem, MutableItem
from hyphal.mainline.messages import (
    INVALID_SIGNATURE,
    MESSAGE_TOO_BIG,
    METHOD_UNKNOWN,
    PROTOCOL_ERROR,
    SALT_TOO_BIG,
    Addr,
    Query,
    bencached,
    bencode,
    encode_compact_addr,
    encode_nodes,
    get_bytes,
    get_int,
    optional_int,
)
from hyphal.mainline.routing import RoutingTable
from hyphal.mainline.store import ItemRefused, ItemStore

NODE_ID = 20


class QueryRefused(Exception):
    """A query answered with a KRPC error (``code``, ``message``)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message


class ServerState(Protocol):
    @property
    def id(self) -> bytes: ...
    @property
    def table(self) -> RoutingTable: ...
    @property
    def tokens(self) -> TokenIssuer: ...
    @property
    def store(self) -> ItemStore: ...
    @property
    def k(self) -> int: ...


def _token(state: ServerState, addr: Addr, now: float) -> bytes:
    # BEP 5: the token proves the writer receives at the IP it writes from (any port, any target).
    return state.tokens.issue((addr[0], 0), b"", now)


def _check_token(state: ServerState, args: dict[bytes, Any], addr: Addr, now: float) -> None:
    token = get_bytes(args, b"token", max_size=64)
    if not state.tokens.check(token, (addr[0], 0), b"", now):
        raise QueryRefused(PROTOCOL_ERROR, "bad token")


def _nodes(state: ServerState, target: bytes) -> bytes:
    return encode_nodes([(c.id, c.addr) for c in state.table.closest(target, state.k)])


def answer(state: ServerState, query: Query, addr: Addr, now: float) -> dict[bytes, Any]:
    """The ``r`` values answering ``query`` from ``addr``; :class:`QueryRefused` for an error reply."""
    args = query.args
    out: dict[bytes, Any] = {b"id": state.id}
    try:
        method = query.method
        if method == "ping":
            return out
        if method == "find_node":
            out[b"nodes"] = _nodes(state, get_bytes(args, b"target", size=NODE_ID))
            return out
        if method == "get_peers":
            info_hash = get_bytes(args, b"info_hash", size=NODE_ID)
            out[b"token"] = _token(state, addr, now)
            peers = state.store.peers(info_hash, now)
            if peers:
                out[b"values"] = [encode_compact_addr(p) for p in peers]
            out[b"nodes"] = _nodes(state, info_hash)
            return out
        if method == "announce_peer":
            info_hash = get_bytes(args, b"info_hash", size=NODE_ID)
            _check_token(state, args, addr, now)
            implied = args.get(b"implied_port", 0) == 1
            port = addr[1] if implied else get_int(args, b"port", low=1, high=65535)
            state.store.add_peer(info_hash, (addr[0], port), now)
            return out
        if method == "get":
            return _get(state, args, addr, now, out)
        if method == "put":
            _put(state, args, addr, now)
            return out
    except DecodeError as e:
        raise QueryRefused(PROTOCOL_ERROR, str(e)) from None
    raise QueryRefused(METHOD_UNKNOWN, "method unknown")


def _get(
    state: ServerState, args: dict[bytes, Any], addr: Addr, now: float, out: dict[bytes, Any]
) -> dict[bytes, Any]:
    target = get_bytes(args, b"target", size=NODE_ID)
    out[b"token"] = _token(state, addr, now)
    out[b"nodes"] = _nodes(state, target)
    immutable = state.store.get_immutable(target, now)
    if immutable is not None:
        out[b"v"] = bencached(immutable.v)
        return out
    mutable = state.store.get_mutable(target, now)
    if mutable is not None:
        newer_than = optional_int(args, b"seq")
        out[b"seq"] = mutable.seq
        if newer_than is None or mutable.seq > newer_than:
            out.update({k: v for k, v in mutable.wire().items() if k != b"salt"})
    return out


def _put(state: ServerState, args: dict[bytes, Any], addr: Addr, now: float) -> None:
    if b"v" not in args:
        raise QueryRefused(PROTOCOL_ERROR, "v is missing")
    try:
        v = bencode(args[b"v"])
    except InvalidInput:
        raise QueryRefused(PROTOCOL_ERROR, "v is not bencodable") from None
    if len(v) > MAX_VALUE_SIZE:
        raise QueryRefused(MESSAGE_TOO_BIG, "message (v field) too big")
    _check_token(state, args, addr, now)
    if b"k" not in args:
        state.store.put_immutable(ImmutableItem(v), now)  # stored under its own hash: nothing to forge
        return
    salt = args.get(b"salt", b"")
    if not isinstance(salt, bytes):
        raise QueryRefused(PROTOCOL_ERROR, "salt is not a string")
    if len(salt) > MAX_SALT_SIZE:
        raise QueryRefused(SALT_TOO_BIG, "salt (salt field) too big")
    try:
        item = MutableItem.from_wire(args, salt)
    except SignatureError:
        raise QueryRefused(INVALID_SIGNATURE, "invalid signature") from None
    try:
        state.store.put_mutable(item, now, optional_int(args, b"cas"))
    except ItemRefused as e:
        raise QueryRefused(e.code, e.message) from None


__all__ = ["QueryRefused", "ServerState", "answer"]
