"""Virtual time for anyio code: a deterministic asyncio event loop.

:class:`VirtualLoop` is an asyncio loop whose ``time()`` is simulated. When
no callback is ready and no I/O is, it does not sleep until its next timer:
it moves the clock to that timer. So ``anyio.sleep``, ``fail_after``,
``move_on_after`` and ``anyio.current_time`` run in virtual time, an hour of
timeouts costs microseconds, and :func:`run` with the same seed replays the
same run, callback for callback:

- each pass of the loop over ready callbacks advances the clock by
  :data:`TICK` (a nanosecond), as CPU time would: code that waits "until
  ``now - start >= interval``" must not spin at one instant on a rounding
  error.
- asyncio's ready queue is FIFO and its timer heap is ordered by deadline;
  with no real I/O and no threads, the order of every step is a function of
  the program alone.
- anyio delivers a cancellation by walking a cancel scope's tasks and child
  scopes, kept in sets hashed by ``id()``: the cancelled tasks would wake in
  memory-address order, a new one each run. Under a virtual loop those sets
  keep insertion order (hyphal's own code keeps waiters it wakes in dicts,
  for the same reason).
- Threads would break the order too (a worker's result lands whenever the OS says),
  so under a virtual loop ``anyio.to_thread.run_sync`` (and
  ``loop.run_in_executor``) run the function inline, at once, in zero
  virtual time. The blob store's hashing and the provider's encoding are
  synchronous work with no waits inside, so running it inline changes when,
  not what. Outside a virtual loop the hook hands over to anyio unchanged.
- Entropy: ``secrets.token_bytes`` (and so ``token_hex``, ``KeyPair.generate``,
  Noise ephemeral keys, AEAD nonces, channel ids) draws from the loop's
  seeded ``random.Random`` while a virtual loop runs in this thread. That makes
  group keys, and so discovery keys, DHT paths and every ciphertext, a
  function of the seed; outside a virtual loop it is the system's CSPRNG.
  A seeded "secret" is no secret: this exists for simulations only.
- The wall clock: code that needs UNIX time (signed timestamps, file
  mtimes) calls :func:`hyphal.clock.wall_time`, which asks the running loop
  for ``wall_time()``; here that is :data:`~hyphal.sim.network.EPOCH` plus
  the virtual time. (``time.time()`` itself is not patched.)

Nothing here opens a socket: the loop's own self-pipe (asyncio's wake-up
for other threads) is the only descriptor its selector watches. A run where
every task waits and no timer is set is a deadlock; the loop then raises
:class:`SimulationStalled` instead of hanging.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import selectors
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import anyio
from anyio._backends._asyncio import AsyncIOBackend, CancelScope

from hyphal.errors import HyphalError, InvalidInput
from hyphal.sim.network import EPOCH

T = TypeVar("T")

TICK = 1e-9
"""Virtual seconds each pass of the loop over ready callbacks takes (see ``_VirtualSelector.select``)."""
STALL_TIMEOUT = 5.0
"""Real seconds the loop waits for another thread's wake-up when nothing is scheduled at all."""


class SimulationStalled(HyphalError):
    """Every task waits on something no timer or stream will ever bring: a deadlock."""


class _VirtualSelector(selectors.BaseSelector):
    """A real selector (for the self-pipe) that advances the clock instead of blocking."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        assert self.loop is not None
        events = self._real.select(0)
        if events or timeout == 0:
            # Every pass over ready callbacks costs a tick (CPU time, in effect). Without it a
            # task that sleeps until ``t`` and finds ``now - start < interval`` by a rounding
            # error would spin forever at one instant, where a real clock moves on.
            self.loop.advance(TICK)
            return events
        if timeout is None:
            # Nothing ready and no timer: only another thread could wake us now.
            events = self._real.select(self.loop.stall_timeout)
            if not events:
                raise SimulationStalled("every task waits and no timer is set (a deadlock in the simulation)")
            return events
        self.loop.advance(timeout)
        return []


class VirtualLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on a virtual clock, with seeded entropy. See the module docstring."""

    def __init__(self, seed: int = 0, *, start: float = 0.0, stall_timeout: float = STALL_TIMEOUT) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._now = start
        self.seed = seed
        self.stall_timeout = stall_timeout
        self.random = random.Random(seed)
        """The loop's entropy: ``secrets.token_bytes`` draws from it while this loop runs."""
        self._clock_resolution = 1e-9
        _install_hooks()

    def time(self) -> float:
        return self._now

    def wall_time(self) -> float:
        """UNIX time in the simulation (read by :func:`hyphal.clock.wall_time`)."""
        return EPOCH + self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward (the loop does this itself when it would sleep)."""
        if seconds > 0:
            self._now += seconds

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., T], *args: Any
    ) -> asyncio.Future[T]:
        # Inline, for the reason in the module docstring.
        future: asyncio.Future[T] = self.create_future()
        try:
            future.set_result(func(*args))
        except BaseException as exc:  # handed to the awaiting task, as an executor would
            future.set_exception(exc)
        return future


class _OrderedSet(dict[Any, None]):
    """The part of ``set`` anyio's cancel scopes use, iterated in insertion order."""

    def add(self, item: Any) -> None:
        self[item] = None

    def remove(self, item: Any) -> None:
        del self[item]

    def discard(self, item: Any) -> None:
        self.pop(item, None)


def _running_virtual_loop() -> VirtualLoop | None:
    loop = asyncio.events._get_running_loop()
    return loop if isinstance(loop, VirtualLoop) else None


_hooks_lock = threading.Lock()
_hooks_installed = False


def _install_hooks() -> None:
    """Route ``anyio.to_thread`` and ``secrets.token_bytes`` to the virtual loop when one runs,
    and order anyio's cancellation (see below) under it.

    Installed once per process; each hook checks for a running virtual loop
    and otherwise calls what it replaced, so code outside the simulator is
    unaffected.
    """
    global _hooks_installed
    with _hooks_lock:
        if _hooks_installed:
            return
        _hooks_installed = True
        system_token_bytes = secrets.token_bytes

        def token_bytes(nbytes: int | None = None) -> bytes:
            loop = _running_virtual_loop()
            if loop is None:
                return system_token_bytes(nbytes)
            return loop.random.randbytes(32 if nbytes is None else nbytes)

        secrets.token_bytes = token_bytes

        to_thread = AsyncIOBackend.run_sync_in_worker_thread

        async def run_sync_in_worker_thread(
            cls: type[AsyncIOBackend],
            func: Callable[..., T],
            args: tuple[Any, ...],
            abandon_on_cancel: bool = False,
            limiter: Any = None,
        ) -> T:
            if _running_virtual_loop() is None:
                result: T = await to_thread(func, args, abandon_on_cancel, limiter)
                return result
            await cls.checkpoint()
            return func(*args)

        AsyncIOBackend.run_sync_in_worker_thread = classmethod(run_sync_in_worker_thread)  # type: ignore[method-assign, assignment]

        # A cancel scope delivers a cancellation by walking sets of its tasks and child scopes,
        # hashed by id(): the tasks would wake in memory-address order, different on each run.
        # Under a virtual loop those sets keep insertion order instead.
        scope_init = CancelScope.__init__

        def cancel_scope_init(self: CancelScope, *args: Any, **kwargs: Any) -> None:
            scope_init(self, *args, **kwargs)
            if _running_virtual_loop() is not None:
                self._child_scopes = _OrderedSet()  # type: ignore[assignment]
                self._tasks = _OrderedSet()  # type: ignore[assignment]

        CancelScope.__init__ = cancel_scope_init  # type: ignore[method-assign]


def run(
    main: Callable[..., Awaitable[T]], *args: Any, seed: int = 0, stall_timeout: float = STALL_TIMEOUT
) -> T:
    """``anyio.run(main, *args)`` on a :class:`VirtualLoop` seeded with ``seed``."""

    def factory() -> asyncio.AbstractEventLoop:
        return VirtualLoop(seed, stall_timeout=stall_timeout)

    return anyio.run(main, *args, backend="asyncio", backend_options={"loop_factory": factory})


def current_loop() -> VirtualLoop:
    """The running virtual loop (``InvalidInput`` outside :func:`run`)."""
    loop = _running_virtual_loop()
    if loop is None:
        raise InvalidInput("not running on a virtual loop (use hyphal.sim.clock.run)")
    return loop


__all__ = ["EPOCH", "STALL_TIMEOUT", "SimulationStalled", "VirtualLoop", "current_loop", "run"]
