"""TaskOwner: the enter/run/leave lifecycle shared by drivers, listeners and pools."""

from __future__ import annotations

import anyio
import pytest

from hyphal.errors import InvalidInput
from hyphal.lifecycle import TaskOwner

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Ticker(TaskOwner):
    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled = False
        self.stopped = False

    def _started(self) -> None:
        self._spawn(self._run)

    async def _run(self) -> None:
        self.started.set()
        try:
            await anyio.sleep_forever()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise

    async def _stopping(self) -> None:
        self.stopped = True
        await super()._stopping()


async def test_tasks_run_while_entered_and_are_cancelled_on_leaving() -> None:
    ticker = Ticker()
    with anyio.fail_after(5):
        async with ticker:
            await ticker.started.wait()
            assert not ticker.cancelled
    assert ticker.stopped
    assert ticker.cancelled


async def test_spawning_before_entering_is_invalid_input() -> None:
    ticker = Ticker()
    with pytest.raises(InvalidInput, match="async with"):
        ticker._spawn(ticker._run)
