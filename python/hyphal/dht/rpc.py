"""The extension point of a DHT node: what a request handler gets and gives back.

Built-in methods (:mod:`hyphal.dht.holder`) and extensions
(:meth:`hyphal.dht.core.DhtCore.register_handler`, e.g. the secret store)
are all handlers: ``Handler(RequestContext) -> Reply``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from hyphal.dht.config import DhtConfig
from hyphal.dht.limits import Counters
from hyphal.dht.messages import Request, Response, Status
from hyphal.dht.record_store import RecordStore
from hyphal.dht.records import Addr, NodeRecord
from hyphal.dht.routing import RoutingTable
from hyphal.dht.tokens import TokenIssuer


class NodeState(Protocol):
    """What a handler may read of the node it runs on (:class:`~hyphal.dht.core.DhtCore` has it all).

    A protocol rather than the node class, so this module sits below the node
    and imports nothing that imports it.
    """

    @property
    def id(self) -> bytes: ...
    @property
    def config(self) -> DhtConfig: ...
    @property
    def counters(self) -> Counters: ...
    @property
    def store(self) -> RecordStore: ...
    @property
    def table(self) -> RoutingTable: ...
    @property
    def tokens(self) -> TokenIssuer: ...


@dataclass(frozen=True, slots=True)
class Reply:
    """A request handler's answer: the status, a payload, and whether to add closer nodes and a token."""

    status: int = Status.OK
    payload: bytes = b""
    nodes: bool = False
    token: bool = False


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What a request handler sees."""

    node: NodeState
    now: float
    addr: Addr
    request: Request
    sender: NodeRecord | None

    def token_ok(self) -> bool:
        """The request carries a write token we gave this address for its target."""
        target = self.request.target
        return target is not None and self.node.tokens.check(self.request.token, self.addr, target, self.now)


Handler = Callable[[RequestContext], Reply]
ReplyCallback = Callable[[float, Response, NodeRecord], None]


__all__ = ["Handler", "NodeState", "Reply", "ReplyCallback", "RequestContext"]
