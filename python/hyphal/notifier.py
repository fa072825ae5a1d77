"""Callbacks and an awaitable for "something changed"."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Generic, TypeVar

import anyio

log = logging.getLogger(__name__)

T = TypeVar("T")


class Notifier(Generic[T]):
    """Callbacks and an awaitable for "something changed", used across the layers."""

    __slots__ = ("_listeners", "_waiters")

    def __init__(self) -> None:
        self._listeners: list[Callable[[T], None]] = []
        # One event per waiting task, made inside it: an Event belongs to the loop that made it,
        # and a cancelled waiter must not leave a stale one behind.
        self._waiters: list[anyio.Event] = []

    def subscribe(self, listener: Callable[[T], None]) -> Callable[[], None]:
        """Call ``listener(change)`` after every change; returns a function that unsubscribes."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def notify(self, change: T) -> None:
        waiters, self._waiters = self._waiters, []
        for event in waiters:
            event.set()
        for listener in list(self._listeners):
            try:
                listener(change)
            except Exception:
                # The change is already committed; one bad listener must not hide it from the rest.
                log.exception("change listener %r failed", listener)

    async def wait(self) -> None:
        """Return after the next change."""
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        finally:
            if event in self._waiters:
                self._waiters.remove(event)


__all__ = ["Notifier"]
