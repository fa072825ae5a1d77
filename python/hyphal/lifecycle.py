"""Objects that run background tasks while entered: ``async with thing: ...``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Self, TypeVarTuple

import anyio
import anyio.abc

from hyphal.errors import InvalidInput

Args = TypeVarTuple("Args")


class TaskOwner:
    """Owns a task group from ``__aenter__`` to ``__aexit__``.

    Subclasses start their first tasks in :meth:`_started`, more with
    :meth:`_spawn`, and make them end in :meth:`_stopping` (by default:
    cancel them all). Leaving waits for every task to end.
    """

    _group: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        self._started()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        await self._stopping()
        assert self._group is not None
        return await self._group.__aexit__(exc_type, exc, tb)

    def _require_running(self) -> anyio.abc.TaskGroup:
        if self._group is None:
            raise InvalidInput(f"use {type(self).__name__} as an async context manager (async with) first")
        return self._group

    def _spawn(self, function: Callable[[*Args], Coroutine[Any, Any, Any]], *args: *Args) -> None:
        self._require_running().start_soon(function, *args)

    def _started(self) -> None:
        """Start the first tasks; the group is entered."""

    async def _stopping(self) -> None:
        """Make every task end."""
        if self._group is not None:
            self._group.cancel_scope.cancel()


async def close_stack(stack: contextlib.AsyncExitStack) -> None:
    """``await stack.aclose()``, with any cycle in the escaping exception's context chain cut.

    Why: when several anyio task groups on one stack re-raise the same CancelledError,
    contextlib's context fixing can make that exception an ancestor of itself. anyio's
    ``task_done`` walks ``__context__`` to the first CancelledError and would spin there forever
    (a node stuck at 100% CPU while stopping under cancellation; seen in the test suite).
    """
    try:
        await stack.aclose()
    except BaseException as exc:
        break_context_cycle(exc)
        raise


def break_context_cycle(exc: BaseException) -> None:
    """Cut ``exc``'s ``__context__`` chain where it first loops back on itself."""
    seen = {id(exc)}
    current = exc
    while current.__context__ is not None:
        if id(current.__context__) in seen:
            current.__context__ = None
            return
        seen.add(id(current.__context__))
        current = current.__context__


__all__ = ["TaskOwner", "break_context_cycle", "close_stack"]
