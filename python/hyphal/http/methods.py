"""How a route runs a control method: the very handlers the Unix socket runs, by name.

:func:`call` runs one to its result. :func:`running` runs one in a task and
hands back what it streams (``progress`` and ``event`` bodies, then its
``result`` or ``error``) in order, for the Server-Sent Events and byte
streams of :mod:`.streams`. Nothing here knows what a method does: params are
checked by the method's own :class:`~hyphal.control.params.Params`, errors
are the method's own typed errors.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream

from hyphal.control.encoding import Json
from hyphal.control.methods import Call, lookup
from hyphal.node import Node

STREAM_BUFFER = 64
"""Items a method may run ahead of a slow HTTP client before its ``emit`` waits (back-pressure)."""

Kind = Literal["progress", "event", "result", "error"]


@dataclass(frozen=True, slots=True)
class Item:
    kind: Kind
    body: Any
    """The JSON body; for ``error``, the exception."""


def params_of(**given: Any) -> Json:
    """The params that were given: a missing optional param is absent, not ``null``."""
    return {key: value for key, value in given.items() if value is not None}


async def call(node: Node, method: str, params: Json | None = None) -> Any:
    """Run control method ``method`` to its result (its progress is dropped)."""
    handler, checked = lookup(method, params or {})

    async def drop(kind: str, body: Json) -> None:
        pass

    try:
        return await handler(Call(node, checked, drop))
    except BaseExceptionGroup as group:
        raise unwrap(group) from None


def unwrap(exc: BaseException) -> BaseException:
    """The (first) error inside the exception groups task groups wrap errors in."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


@contextlib.asynccontextmanager
async def running(
    node: Node, method: str, params: Json | None = None
) -> AsyncIterator[MemoryObjectReceiveStream[Item]]:
    """Run ``method`` in a task while the caller reads its items; leaving cancels it.

    A bad method name or params raise here, before anything runs.
    """
    handler, checked = lookup(method, params or {})
    send, receive = anyio.create_memory_object_stream[Item](STREAM_BUFFER)

    async def emit(kind: str, body: Json) -> None:
        await send.send(Item("event" if kind == "event" else "progress", body))

    async def run() -> None:
        async with send:
            try:
                item = Item("result", await handler(Call(node, checked, emit)))
            except Exception as exc:
                item = Item("error", unwrap(exc))
            # A reader that left has closed its end: nobody is owed the outcome.
            with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                await send.send(item)

    async with anyio.create_task_group() as tg, receive:
        tg.start_soon(run)
        try:
            yield receive
        finally:
            tg.cancel_scope.cancel()


@dataclass(frozen=True, slots=True)
class Context:
    """What every route needs: the node, its data dir (for upload temp files) and the server's
    stopping event (which ends every open event stream when the daemon stops)."""

    node: Node
    stopping: anyio.Event

    @property
    def data_dir(self) -> Path:
        return self.node.data_dir


__all__ = ["Context", "Item", "call", "params_of", "running"]
