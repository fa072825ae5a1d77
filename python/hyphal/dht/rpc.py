"""The extension point of a DHT node: what a request handler gets and gives back.

Built-in methods (:mod:`hyphal.dht.holder`) and extensions
(:meth:`hyphal.dht.node.DhtNode.register_handler`, e.g. the secret store)
are all handlers: ``Handler(RequestContext) -> Reply``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hyphal.dht.messages import Request, Response, Status
from hyphal.dht.records import Addr, NodeRecord

if TYPE_CHECKING:
    from hyphal.dht.node import DhtNode


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

    node: DhtNode
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


__all__ = ["Handler", "Reply", "ReplyCallback", "RequestContext"]
