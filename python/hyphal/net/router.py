"""Routes the channels a peer opens to the service that speaks their protocol.

A node runs several protocols over one connection (feeds, manifests, blobs,
group membership). :class:`ChannelRouter` reads every connection's incoming
channel requests and hands each to the handler registered for its protocol.
A handler accepts (by opening the channel, directly or through a driver's
``attach``) or declines by returning ``False``; the router then rejects the
request with a reason. Unknown protocols are rejected, and a handler that
fails costs that request only: it is logged and rejected, and the
connection and node go on.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable

import anyio

from hyphal.errors import InvalidInput
from hyphal.lifecycle import TaskOwner
from hyphal.net.connection import ChannelRequest, Connection
from hyphal.notifier import Notifier

log = logging.getLogger("hyphal.net")

ChannelHandler = Callable[[ChannelRequest], Awaitable[bool]]
"""Accept ``request`` (open its channel) and return ``True``, or return ``False`` to reject it."""


class ChannelRouter(TaskOwner):
    def __init__(self) -> None:
        self._handlers: dict[str, ChannelHandler] = {}
        self.rejected: dict[str, int] = {}
        """Requests rejected, by reason: counters for operators and tests."""
        self.rejections: Notifier[str] = Notifier()
        """Told the reason of every rejection."""

    def route(self, protocol: str, handler: ChannelHandler) -> None:
        if protocol in self._handlers:
            raise InvalidInput(f"protocol {protocol!r} already has a handler")
        self._handlers[protocol] = handler

    async def serve(self, connection: Connection) -> None:
        """Route ``connection``'s incoming channels until it closes (usable as a listen handler)."""
        self._require_running()
        async for request in connection.incoming_channels():
            # Each request in its own task: a handler that waits (to open several channels,
            # say) must not hold up the requests behind it.
            self._spawn(self._dispatch, request)

    async def _dispatch(self, request: ChannelRequest) -> None:
        handler = self._handlers.get(request.protocol)
        if handler is None:
            await self._reject(request, "unknown protocol")
            return
        try:
            accepted = await handler(request)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError) as exc:
            log.debug("a %r channel request ended before it was served: %s", request.protocol, exc)
            return
        except Exception:
            log.exception(
                "handling a %r channel request from %s failed", request.protocol, request.connection
            )
            await self._reject(request, "internal error")
            return
        if not accepted:
            await self._reject(request, "not available here")

    async def _reject(self, request: ChannelRequest, reason: str) -> None:
        self.rejected[reason] = self.rejected.get(reason, 0) + 1
        self.rejections.notify(reason)
        # No longer pending (withdrawn by the peer, or opened by the handler before it failed): nothing to do.
        with contextlib.suppress(InvalidInput):
            await request.reject(reason)


__all__ = ["ChannelHandler", "ChannelRouter"]
