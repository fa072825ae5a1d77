"""``python -m benches mainline``: BEP 44 put and get round trips on a loopback libtorrent DHT.

One network of libtorrent sessions on 127.0.0.1 (``tests/mainline_net.py``)
with one hyphal mainline node joined to it. Each round puts and gets an
immutable and a salted mutable item with hyphal, then the same with a
libtorrent session (its own lookup, signing and alert), round-robin, so both
see the same network in the same run. A row's figure is the median round
trip; the baseline is libtorrent's median for the same operation. Both
run with their rate limits lifted (hyphal's 25 queries/s default alone would
dominate a loopback round trip).
Needs the ``mainline`` extra and libtorrent (a test-only dependency).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import anyio

from benches.harness import Row, log
from hyphal.mainline.config import KrpcConfig
from hyphal.mainline.udp import MainlineUdp
from hyphal.signing import KeyPair

T = TypeVar("T")


def _row(name: str, ours: list[float], theirs: list[float]) -> Row:
    mine, base = statistics.median(ours) * 1e3, statistics.median(theirs) * 1e3
    return Row(
        name=name,
        figure=mine,
        unit="ms",
        baseline_name="libtorrent 2.1.1, same network, same run",
        baseline_figure=base,
        ratio=base / mine,
        ratio_kind="speedup",
        higher_is_better=False,
        note=f"median of {len(ours)}; best {min(ours) * 1e3:.1f} ms vs {min(theirs) * 1e3:.1f} ms",
        details={"ours_s": ours, "baseline_s": theirs},
    )


async def _round(
    dht: MainlineUdp, writer: Any, reader: Any, i: int, add: Callable[[str, float], None]
) -> None:
    """One round: each operation by hyphal, then by libtorrent, each timed to its result."""
    import libtorrent as lt
    from tests.mainline_net import lt_secret_key

    async def lt_wait(node: Any, match: Callable[[Any], bool]) -> Any:
        return await anyio.to_thread.run_sync(node.wait, match, 20.0)

    put = await _timed_value(
        add, "h put i", dht.put_immutable(f"hyphal immutable {i} {time.time()}".encode())
    )
    await _timed_value(add, "h get i", dht.get_immutable(put.target))

    t0 = time.perf_counter()
    target = writer.session.dht_put_immutable_item(f"libtorrent immutable {i} {time.time()}".encode())
    await lt_wait(writer, lambda a: isinstance(a, lt.dht_put_alert) and a.target == target)
    add("l put i", time.perf_counter() - t0)
    t0 = time.perf_counter()
    reader.session.dht_get_immutable_item(target)
    await lt_wait(reader, lambda a: isinstance(a, lt.dht_immutable_item_alert) and a.target == target)
    add("l get i", time.perf_counter() - t0)

    salt = b"bench"
    keypair = KeyPair.generate()
    await _timed_value(add, "h put m", dht.put_mutable(keypair, b"hyphal pointer", salt=salt))
    await _timed_value(add, "h get m", dht.get_mutable(keypair.public_key, salt))

    pk = (theirs := KeyPair.generate()).public_key
    t0 = time.perf_counter()
    writer.session.dht_put_mutable_item(lt_secret_key(theirs.seed), pk, b"lt pointer", salt)
    await lt_wait(writer, lambda a: isinstance(a, lt.dht_put_alert) and bytes(a.public_key) == pk)
    add("l put m", time.perf_counter() - t0)
    t0 = time.perf_counter()
    reader.session.dht_get_mutable_item(pk, salt)
    await lt_wait(
        reader, lambda a: isinstance(a, lt.dht_mutable_item_alert) and bytes(a.key) == pk and a.authoritative
    )
    add("l get m", time.perf_counter() - t0)


async def _timed_value(add: Callable[[str, float], None], key: str, pending: Awaitable[T]) -> T:
    t0 = time.perf_counter()
    value = await pending
    add(key, time.perf_counter() - t0)
    return value


async def _bench(rounds: int, sessions: int) -> list[Row]:
    from tests.mainline_net import LtNetwork

    log(f"mainline: {sessions} libtorrent sessions on loopback, {rounds} rounds")
    net = LtNetwork(sessions)
    await anyio.to_thread.run_sync(net.wait_ready)
    times: dict[str, list[float]] = {}

    def add(key: str, seconds: float) -> None:
        times.setdefault(key, []).append(seconds)

    # Our query rate limit lifted as libtorrent's upload limit is (tests/mainline_net.py): the rows
    # compare the protocols' round trips, not the politeness budgets kept for the public network.
    config = KrpcConfig(query_rate=10_000.0, query_burst=10_000.0)
    try:
        async with MainlineUdp(host="127.0.0.1", routers=net.routers, read_only=False, config=config) as dht:
            for i in range(rounds):
                await _round(dht, net.nodes[0], net.nodes[-1], i, add)
    finally:
        net.close()
    return [
        _row(f"immutable put, {sessions} lt nodes", times["h put i"], times["l put i"]),
        _row(f"immutable get, {sessions} lt nodes", times["h get i"], times["l get i"]),
        _row(f"mutable put (salt), {sessions} lt nodes", times["h put m"], times["l put m"]),
        _row(f"mutable get (salt), {sessions} lt nodes", times["h get m"], times["l get m"]),
    ]


def run(quick: bool) -> list[Row]:
    rounds, sessions = (3, 8) if quick else (15, 16)
    return anyio.run(_bench, rounds, sessions)
