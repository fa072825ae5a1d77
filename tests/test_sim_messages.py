"""The ephemeral message channel on real nodes in the simulator: every message sent directly and
through a relay (so each arrives twice, the two paths interleaved), across a partition, and
replayed to a node that crashed and came back: each delivered exactly once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import anyio

from hyphal.groups.events import MessageReceived
from hyphal.groups.group import Group
from hyphal.sim.clock import run
from hyphal.sim.system import PORT, SystemSimulator, node_ip

A, B, C = node_ip(1), node_ip(2), node_ip(3)
COUNT = 25


async def until(condition: Callable[[], bool]) -> None:
    with anyio.fail_after(120):
        while not condition():
            await anyio.sleep(0.1)  # virtual time


async def collect(group: Group, into: list[MessageReceived]) -> None:
    async for message in group.messages():
        into.append(message)


def test_duplicated_reordered_and_partitioned_messages_arrive_once(tmp_path: Path) -> None:
    async def main() -> None:
        async with SystemSimulator(11, tmp_path) as sim:
            a = await sim.start(A, name="alice")
            c = await sim.start(C, name="relay", backup_for=[a.public_key])
            b = await sim.start(B, name="bob")
            ga = await a.create_group("g")
            gb = await b.join_group(ga.invite().to_uri())
            await a.add_backup(ga.id, f"{C}:{PORT}")
            gc = c.group(ga.id)
            attached = (ga, gb, gc)
            await until(lambda: all(len(g.channel.subscribers) == 2 for g in attached))
            got: list[MessageReceived] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, gb, got)
                await anyio.sleep(0)
                for i in range(COUNT - 5):
                    ga.send(f"m{i}")
                sim.partition([[B]])  # B alone: what A and C send it waits in the network
                for i in range(COUNT - 5, COUNT):
                    ga.send(f"m{i}")
                await anyio.sleep(5)
                sim.heal()
                await until(lambda: len(got) == COUNT and gb.channel.stats.duplicates == COUNT)
                tg.cancel_scope.cancel()
            assert sorted(m.body for m in got) == sorted(f"m{i}".encode() for i in range(COUNT))
            assert gc.channel.stats.forwarded >= COUNT
            assert gc.channel.stats.delivered == 0

            # B crashes and comes back: A and the relay hand it every held message again.
            await sim.crash(B)
            b = await sim.restart(B)
            gb = b.group(ga.id)
            again: list[MessageReceived] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(collect, gb, again)
                await until(lambda: gb.channel.stats.duplicates >= 2 * COUNT)
                ga.send("new")
                await until(lambda: len(again) == 1)
                tg.cancel_scope.cancel()
            assert [m.body for m in again] == [b"new"]

    run(main, seed=11)
