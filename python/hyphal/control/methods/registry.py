"""The registry of control methods, and what they share.

Every method is registered with the params it takes; :func:`lookup` gives the
server a method and its checked params. A method returns its JSON result and
may stream ``progress`` or ``event`` bodies through :attr:`Call.emit` first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
import anyio.abc

from hyphal.control.encoding import Json
from hyphal.control.params import Params
from hyphal.errors import InvalidInput, NotAvailable
from hyphal.groups.group import Group
from hyphal.node import Node

PROGRESS_INTERVAL = 0.1
"""At most ten progress lines a second: a bar needs no more, and a fast sync would flood it."""


@dataclass(frozen=True, slots=True)
class Call:
    node: Node
    params: Params
    emit: Callable[[str, Json], Awaitable[None]]
    """Stream a ``"progress"`` or ``"event"`` body before the result."""


Handler = Callable[[Call], Awaitable[Any]]
METHODS: dict[str, tuple[frozenset[str], Handler]] = {}


def method(name: str, *params: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name] = (frozenset(params), handler)
        return handler

    return register


def lookup(name: object, raw_params: object) -> tuple[Handler, Params]:
    if not isinstance(name, str) or name not in METHODS:
        raise InvalidInput(f"unknown method {str(name)[:64]!r}")
    allowed, handler = METHODS[name]
    return handler, Params(name, raw_params, allowed)


def group_of(call: Call) -> Group:
    """The group the ``group`` param names, or the only one this node is in."""
    ref = call.params.opt_text("group")
    if ref is not None:
        return call.node.group(ref)
    groups = call.node.groups()
    if len(groups) == 1:
        return groups[0]
    if not groups:
        raise NotAvailable("not in any group yet: `hyphal group create NAME` or `hyphal group join URI`")
    raise InvalidInput(f"in {len(groups)} groups: name one with --group (see `hyphal group list`)")


class Throttle:
    """Keeps the latest progress and sends it at most every :data:`PROGRESS_INTERVAL`."""

    def __init__(self, emit: Callable[[str, Json], Awaitable[None]]) -> None:
        self._emit = emit
        self._latest: Json | None = None
        self._wanted = anyio.Event()

    def __call__(self, body: Json) -> None:
        self._latest = body
        self._wanted.set()

    async def _pump(self) -> None:
        while True:
            await self._wanted.wait()
            self._wanted = anyio.Event()
            await self.flush()
            await anyio.sleep(PROGRESS_INTERVAL)

    async def flush(self) -> None:
        latest, self._latest = self._latest, None
        if latest is not None:
            await self._emit("progress", latest)

    async def run(self, operation: Callable[[], Awaitable[Json]]) -> Json:
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._pump)
            result = await operation()
            tg.cancel_scope.cancel()
        await self.flush()
        return result


__all__ = ["METHODS", "Call", "Handler", "Throttle", "group_of", "lookup", "method"]
