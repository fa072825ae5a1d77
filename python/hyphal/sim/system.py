"""The whole system in the simulator: :class:`SystemSimulator` runs real nodes on a simulated network.

Inside :func:`hyphal.sim.clock.run` (the virtual loop), ``async with
SystemSimulator(seed, root) as sim`` gives a :class:`~hyphal.sim.streams.StreamNetwork`
and starts :class:`~hyphal.sim.node.SimNode` s on it, each in a task of its
own with a data dir under ``root``; it crashes them (the network breaks
their streams at once, then their tasks are cancelled) and restarts them
from their data dirs, partitions and heals the network. Its
:attr:`trace_digest` covers every byte the network carried and when, so the
same seed and scenario give the same digest.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import anyio
import anyio.abc

from hyphal.errors import InvalidInput
from hyphal.sim.node import SimNode
from hyphal.sim.streams import StreamNetwork

PORT = 7300


def node_ip(index: int) -> str:
    """``10.1.a.b``: the address of node ``index`` (up to 65536 nodes)."""
    return f"10.1.{(index >> 8) & 0xFF}.{index & 0xFF}"


class SystemSimulator:
    """Real nodes on a simulated network, with their lifecycles. See the module docstring."""

    def __init__(self, seed: int, root: str | Path, **network_options: Any) -> None:
        self.seed = seed
        self.root = Path(root)
        self.network = StreamNetwork(seed, **network_options)
        self.nodes: dict[str, SimNode] = {}
        """The running node at each IP."""
        self._options: dict[str, dict[str, Any]] = {}
        self._running: dict[str, tuple[anyio.Event, anyio.Event]] = {}
        self._tg: anyio.abc.TaskGroup | None = None

    async def __aenter__(self) -> Self:
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._tg is not None
        try:
            for ip in sorted(self._running):
                await self.stop(ip)
        finally:
            self._tg.cancel_scope.cancel()
            result = await self._tg.__aexit__(exc_type, exc, tb)
            self._tg = None
        return result

    @property
    def trace_digest(self) -> str:
        return self.network.trace_digest

    async def start(self, ip: str, **node_options: Any) -> SimNode:
        """Start a node at ``ip`` (its data dir is ``root/ip``); options go to :class:`SimNode`."""
        if self._tg is None:
            raise InvalidInput("use SystemSimulator as an async context manager (async with) first")
        if ip in self._running:
            raise InvalidInput(f"a node already runs at {ip}")
        self._options[ip] = node_options
        node = SimNode(self.network, ip, self.root / ip, seed=self.seed, port=PORT, **node_options)
        started: SimNode = await self._tg.start(self._hold, node)
        return started

    async def _hold(self, node: SimNode, *, task_status: anyio.abc.TaskStatus[SimNode]) -> None:
        stop, stopped = anyio.Event(), anyio.Event()
        self._running[node.ip] = (stop, stopped)
        try:
            async with node:
                self.nodes[node.ip] = node
                task_status.started(node)
                await stop.wait()
        finally:
            self.nodes.pop(node.ip, None)
            self._running.pop(node.ip, None)
            stopped.set()

    async def stop(self, ip: str) -> None:
        """Stop the node at ``ip`` the orderly way (its connections close, its state is saved)."""
        found = self._running.get(ip)
        if found is not None:
            stop, stopped = found
            stop.set()
            with anyio.CancelScope(shield=True):
                await stopped.wait()

    async def crash(self, ip: str) -> None:
        """The node at ``ip`` dies: every stream of its host breaks now (the peers get resets)
        and its listeners and DHT port vanish; then its program ends. Its goodbyes go nowhere,
        but its local shutdown still runs (the stores close, the DHT table and groups file
        are saved): this models a process whose writes reached the disk, not a torn write."""
        self.network.crash(ip)
        await self.stop(ip)

    async def restart(self, ip: str) -> SimNode:
        """Start the node at ``ip`` again from its data dir, with the options it had."""
        self.network.restart(ip)
        return await self.start(ip, **self._options.get(ip, {}))

    def partition(self, groups: Iterable[Iterable[str]]) -> None:
        self.network.partition(groups)

    def heal(self) -> None:
        self.network.heal()


__all__ = ["PORT", "SystemSimulator", "node_ip"]
