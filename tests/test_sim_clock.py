"""The simulator's virtual loop: anyio code runs in virtual time, and a seed replays a run."""

from __future__ import annotations

import secrets
import threading
import time

import anyio
import pytest

from hyphal.clock import wall_time
from hyphal.signing import KeyPair
from hyphal.sim.clock import SimulationStalled, current_loop, run
from hyphal.sim.network import EPOCH


def test_sleeps_and_timeouts_run_in_virtual_time() -> None:
    async def main() -> tuple[float, float, float, bool, float]:
        start = anyio.current_time()
        await anyio.sleep(3600)
        slept = anyio.current_time() - start
        with pytest.raises(TimeoutError):
            with anyio.fail_after(30):
                await anyio.Event().wait()
        failed = anyio.current_time() - start
        with anyio.move_on_after(5) as scope:
            await anyio.sleep_forever()
        return slept, failed, anyio.current_time() - start, scope.cancelled_caught, wall_time()

    real = time.monotonic()
    slept, failed, moved, caught, wall = run(main)
    assert time.monotonic() - real < 2.0
    assert slept == pytest.approx(3600)
    assert failed == pytest.approx(3630)
    assert moved == pytest.approx(3635)
    assert caught
    assert wall == pytest.approx(EPOCH + 3635)


async def _workload() -> list[tuple[float, str, bytes]]:
    """Tasks that interleave by virtual time and draw entropy: the trace a seed must replay."""
    trace: list[tuple[float, str, bytes]] = []

    async def worker(name: str, period: float) -> None:
        for _ in range(5):
            await anyio.sleep(period + current_loop().random.random() / 100)
            trace.append((anyio.current_time(), name, secrets.token_bytes(4)))

    async with anyio.create_task_group() as tg:
        for i in range(4):
            tg.start_soon(worker, f"w{i}", 0.1 * (i + 1))
    trace.append((anyio.current_time(), "key", KeyPair.generate().public_key))
    return trace


def test_same_seed_same_run_other_seed_other_run() -> None:
    first = run(_workload, seed=7)
    assert run(_workload, seed=7) == first
    assert run(_workload, seed=8) != first
    assert len(first) == 21


def test_entropy_outside_the_simulator_stays_random() -> None:
    run(_workload, seed=1)
    assert secrets.token_bytes(16) != secrets.token_bytes(16)


def test_threads_run_inline_and_deterministically() -> None:
    def blocking(x: int) -> tuple[int, int]:
        return x * 2, threading.get_ident()

    async def main() -> tuple[list[int], set[int], float]:
        results: list[int] = []
        threads: set[int] = set()

        async def one(x: int) -> None:
            value, ident = await anyio.to_thread.run_sync(blocking, x)
            results.append(value)
            threads.add(ident)

        async with anyio.create_task_group() as tg:
            for x in range(10):
                tg.start_soon(one, x)
        return results, threads, anyio.current_time()

    results, threads, now = run(main)
    assert results == [x * 2 for x in range(10)]
    assert threads == {threading.get_ident()}
    assert now < 1e-6  # no virtual time passes while they run


def test_to_thread_outside_the_simulator_still_uses_a_thread() -> None:
    async def main() -> int:
        return await anyio.to_thread.run_sync(threading.get_ident)

    run(main)  # installs the hooks
    assert anyio.run(main) != threading.get_ident()


def test_a_deadlock_raises_instead_of_hanging() -> None:
    async def main() -> None:
        await anyio.Event().wait()

    with pytest.raises(SimulationStalled):
        run(main, stall_timeout=0.01)


def test_a_cancelled_group_wakes_its_tasks_in_the_order_they_started() -> None:
    """anyio delivers a cancellation by walking sets hashed by id(): memory-address order, different
    on each run. Under the virtual loop the order is the tasks' own (both for tasks waiting in the
    group's scope and for those in scopes of their own)."""

    async def main() -> list[int]:
        woke: list[int] = []

        async def wait(i: int) -> None:
            with anyio.CancelScope():  # half of them in a child scope of the group's
                try:
                    await anyio.sleep_forever()
                finally:
                    woke.append(i)

        async def wait_here(i: int) -> None:
            try:
                await anyio.sleep_forever()
            finally:
                woke.append(i)

        async with anyio.create_task_group() as tg:
            for i in range(64):
                tg.start_soon(wait if i % 2 else wait_here, i)
            await anyio.sleep(1)
            tg.cancel_scope.cancel()
        return woke

    assert run(main) == list(range(64))
