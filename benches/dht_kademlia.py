"""The baseline of the ``dht`` UDP rows: bmuller/kademlia 2.2.3 (PyPI ``kademlia``), same shape of run.

N ``kademlia.network.Server`` nodes in this process on 127.0.0.1 bootstrap
one after the other, ``set`` records, ``get`` them from random nodes, then
30% of the nodes stop (no republish) and the gets run again. Gets run ten at
a time, each timed on its own: kademlia waits out 5 s timeouts on dead
nodes, and one after another they would take many minutes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

from benches.harness import log


@dataclass
class KademliaRun:
    bootstrap_s: float = 0.0
    put_ms: list[float] = field(default_factory=list)
    get_ms: list[float] = field(default_factory=list)
    found_before: float = 0.0
    get_ms_after: list[float] = field(default_factory=list)
    found_after: float = 0.0


async def _gets(
    nodes: list[Any], keys: list[tuple[str, str]], rng: random.Random
) -> tuple[float, list[float]]:
    found = 0
    times: list[float] = []

    async def one(key: str, value: str) -> None:
        nonlocal found
        node = rng.choice(nodes)
        t = time.perf_counter()
        got = await node.get(key)
        times.append((time.perf_counter() - t) * 1000)
        found += got == value

    for first in range(0, len(keys), 10):
        await asyncio.gather(*(one(k, v) for k, v in keys[first : first + 10]))
    return found / len(keys), times


async def _run(n: int, records: int) -> KademliaRun:
    from kademlia.network import Server

    logging.getLogger("kademlia").setLevel(logging.CRITICAL)
    logging.getLogger("rpcudp").setLevel(logging.CRITICAL)
    run = KademliaRun()
    nodes: list[Server] = []
    rng = random.Random(n)
    try:
        t0 = time.perf_counter()
        ports: list[int] = []
        for i in range(n):
            node = Server()
            await node.listen(0, interface="127.0.0.1")  # the OS picks a free port
            ports.append(node.transport.get_extra_info("sockname")[1])
            if i:
                await node.bootstrap([("127.0.0.1", ports[j]) for j in sorted({0, i // 2, i - 1})])
            nodes.append(node)
        run.bootstrap_s = time.perf_counter() - t0
        log(f"   {n} kademlia nodes bootstrapped in {run.bootstrap_s:.1f} s")
        keys = [(f"key {i}", f"kademlia record {i}") for i in range(records)]
        for key, value in keys:
            t = time.perf_counter()
            await rng.choice(nodes).set(key, value)
            run.put_ms.append((time.perf_counter() - t) * 1000)
        run.found_before, run.get_ms = await _gets(nodes, keys, rng)
        for victim in rng.sample(nodes[1:], int(0.3 * n)):
            victim.stop()
            nodes.remove(victim)
        log("   kademlia: gets after the kill (it waits out 5 s timeouts)")
        run.found_after, run.get_ms_after = await _gets(nodes, keys, rng)
    finally:
        for node in nodes:
            node.stop()
    return run


def kademlia_run(n: int, records: int) -> KademliaRun:
    return asyncio.run(_run(n, records))


__all__ = ["KademliaRun", "kademlia_run"]
