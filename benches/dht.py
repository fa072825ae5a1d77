"""The ``dht`` suite: the DHT on loopback UDP (``python -m benches dht``) and in the simulator (``--sim``).

Without ``--sim``: N ``UdpDht`` nodes in this process on 127.0.0.1 bootstrap
one after the other, put immutable records, get them from random nodes, then
30% of the nodes go silent (no republish) and the gets run again. The
baseline, bmuller/kademlia 2.2.3 (a bench-only dependency), runs the same
way right after in this process (:mod:`benches.dht_kademlia`).

With ``--sim``:

Every row runs the real :class:`~hyphal.dht.node.DhtNode` state machines in
:mod:`hyphal.sim` (virtual time; one-way link latency 5-146 ms from host
positions on a plane, plus jitter). Figures in ms are *virtual* network time;
the wall-clock cost of the simulation is in each row's details.

- ``join``: N nodes join one after the other through the protocol itself
  (ping three seeds, look up their own id, refresh sparse buckets).
- ``lookups``: tables filled as after a long run (``Simulator.fill_tables``,
  a shortcut that skips the joins), then lookups of random live node ids from
  random origins: hops (median, max) against log2(N), latency, success
  (the exact target found as the closest answer).
- ``churn``: 100 immutable records put, then 30% of the nodes crash with no
  republish; gets from survivors: success and latency.
- ``secret durability``: the replicated secret store (n=5) with 10% of the
  nodes replaced every hour (one crash and one protocol join at a time,
  spread over the hour); at the end, secrets lost and secrets readable.

The baseline column is log2(N), the textbook hop bound; the ratio is
log2(N) / max hops (> 1 is better).
"""

from __future__ import annotations

import gc
import math
import os
import random
import statistics
import time
from typing import Any

from benches.dht_kademlia import kademlia_run
from benches.harness import Row, check, log, run_sections
from hyphal.dht import DhtConfig
from hyphal.sim import SimHost, Simulator

LOOKUPS = 200
DEPLOY_BATCH = 100


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _lookups(sim: Simulator, hosts: list[SimHost], count: int) -> dict[str, Any]:
    hops: list[int] = []
    latency: list[float] = []
    found = 0
    for _ in range(count):
        origin, target = sim.rng.sample(hosts, 2)
        op = sim.run_until_done(sim.start(origin, lambda n, now, t=target: n.find_node(now, t.node.id)))
        result = op.result()
        found += bool(result.closest) and result.closest[0].id == target.node.id
        hops.append(result.hops)
        assert op.latency is not None
        latency.append(op.latency * 1000)
    return {
        "hops_median": statistics.median(hops),
        "hops_max": max(hops),
        "latency_ms_median": statistics.median(latency),
        "latency_ms_p99": _percentile(latency, 0.99),
        "success": found / count,
    }


def _lookup_row(name: str, n: int, stats: dict[str, Any], wall: float) -> Row:
    bound = math.log2(n)
    return Row(
        name=name,
        figure=float(stats["hops_max"]),
        unit="hops (max)",
        baseline_name="log2(N)",
        baseline_figure=bound,
        ratio=bound / max(stats["hops_max"], 1),
        ratio_kind="speedup",
        target="max hops ≤ log2(N), success 100%",
        met=stats["hops_max"] <= bound and stats["success"] == 1.0,
        higher_is_better=False,
        note=(
            f"median {stats['hops_median']:g} hops, latency median {stats['latency_ms_median']:.0f} ms "
            f"p99 {stats['latency_ms_p99']:.0f} ms, success {stats['success']:.1%}"
        ),
        details={**stats, "nodes": n, "wall_s": wall},
    )


def _filled(n: int, seed: int) -> tuple[Simulator, list[SimHost], float]:
    t0 = time.perf_counter()
    sim = Simulator(seed, config=DhtConfig())
    hosts = sim.add_nodes(n)
    sim.fill_tables()
    return sim, hosts, time.perf_counter() - t0


def lookups(n: int) -> list[Row]:
    sim, hosts, setup = _filled(n, seed=n)
    log(f"   {n} nodes built and tables filled in {setup:.1f} s")
    t0 = time.perf_counter()
    stats = _lookups(sim, hosts, LOOKUPS)
    wall = time.perf_counter() - t0
    stats["setup_wall_s"] = setup
    return [_lookup_row(f"lookup, {n} nodes (filled tables)", n, stats, wall)]


def join(n: int) -> list[Row]:
    t0 = time.perf_counter()
    sim = Simulator(n + 1, config=DhtConfig())
    hosts = sim.add_nodes(n)
    started = sim.now
    sim.join_all(hosts, parallel=max(1, n // 100))
    joined_virtual = sim.now - started
    setup = time.perf_counter() - t0
    log(f"   {n} nodes joined in {setup:.1f} s wall, {joined_virtual:.0f} s virtual")
    t0 = time.perf_counter()
    stats = _lookups(sim, hosts, LOOKUPS)
    stats.update(
        join_wall_s=setup,
        join_virtual_s=joined_virtual,
        table_median=statistics.median(len(h.node.table) for h in hosts),
        datagrams=sim.delivered,
    )
    return [_lookup_row(f"lookup, {n} nodes (joined by protocol)", n, stats, time.perf_counter() - t0)]


def churn(n: int, records: int = 100) -> list[Row]:
    sim, hosts, _ = _filled(n, seed=n + 2)
    t0 = time.perf_counter()
    keys: list[tuple[bytes, bytes]] = []
    for i in range(records):
        value = f"record {i}".encode()
        origin = hosts[i * 7919 % n]
        op = sim.run_until_done(
            sim.start(origin, lambda nd, now, v=value: nd.put_immutable(now, v, republish=False))
        )
        check(op.result().stored > 0, "put stored nowhere")
        keys.append((op.result().key, value))
    for host in sim.rng.sample(hosts, int(0.3 * n)):
        sim.crash(host)
    alive = [h for h in hosts if h.alive]
    found, latency = 0, []
    for key, value in keys:
        op = sim.run_until_done(
            sim.start(sim.rng.choice(alive), lambda nd, now, k=key: nd.get_immutable(now, k))
        )
        found += op.result().value == value
        assert op.latency is not None
        latency.append(op.latency * 1000)
    success = found / records
    p99 = _percentile(latency, 0.99)
    return [
        Row(
            name=f"get after 30% crash, {n} nodes",
            figure=success * 100,
            unit="% found",
            target="≥ 99.9%",
            met=success >= 0.999,
            note=(
                f"{records} records, no republish; "
                f"latency median {statistics.median(latency):.0f} ms p99 {p99:.0f} ms"
            ),
            details={
                "success": success,
                "latency_ms_median": statistics.median(latency),
                "latency_ms_p99": p99,
                "wall_s": time.perf_counter() - t0,
            },
        )
    ]


async def _udp(n: int, records: int) -> dict[str, float]:
    import anyio
    import anyio.abc

    from hyphal.dht.udp import UdpDht
    from hyphal.signing import KeyPair

    # One IP for the whole swarm: the per-IP rate limit must let it through.
    config = DhtConfig(rate=1e6, burst=1e6)

    async def run_node(
        i: int, seeds: list[tuple[str, int]], *, task_status: anyio.abc.TaskStatus[UdpDht]
    ) -> None:
        async with UdpDht(KeyPair(_seed(i)), seeds=seeds, config=config) as node:
            task_status.started(node)
            await anyio.sleep_forever()

    async with anyio.create_task_group() as tg:
        # Each node runs in a task of its own, as each would in its own process. (Entered one
        # inside the other, say from an exit stack, node i's cancel scope would nest in node
        # i-1's, and every await of every node would check all n scopes above it.)
        t0 = time.perf_counter()
        nodes: list[UdpDht] = [await tg.start(run_node, 0, [])]
        for i in range(1, n):
            seeds = [nodes[j].address for j in sorted({0, i // 2, i - 1})]
            nodes.append(await tg.start(run_node, i, seeds))
        bootstrap = time.perf_counter() - t0
        log(f"   {n} UDP nodes bootstrapped in {bootstrap:.1f} s")
        rng = random.Random(n)
        keys: list[tuple[bytes, bytes]] = []
        put_ms: list[float] = []
        for i in range(records):
            value = f"udp record {i}".encode()
            t = time.perf_counter()
            result = await rng.choice(nodes).put_immutable(value)
            put_ms.append((time.perf_counter() - t) * 1000)
            check(result.stored > 0, "UDP put stored nowhere")
            keys.append((result.key, value))

        async def gets(alive: list[UdpDht]) -> tuple[float, list[float]]:
            found, ms = 0, []
            for key, value in keys:
                t = time.perf_counter()
                with anyio.fail_after(30):
                    got = await rng.choice(alive).get_immutable(key)
                ms.append((time.perf_counter() - t) * 1000)
                found += got == value
            return found / len(keys), ms

        before, get_ms = await gets(nodes)
        victims = rng.sample(nodes[1:], int(0.3 * n))
        for victim in victims:
            victim.stop()
        dead = {id(v) for v in victims}
        alive = [d for d in nodes if id(d) not in dead]
        after, after_ms = await gets(alive)
        ours = {
            "bootstrap_s": bootstrap,
            "put_ms_median": statistics.median(put_ms),
            "put_ms_p99": _percentile(put_ms, 0.99),
            "get_success_before": before,
            "get_ms_median": statistics.median(get_ms),
            "get_ms_p99": _percentile(get_ms, 0.99),
            "get_success_after_kill": after,
            "get_ms_median_after_kill": statistics.median(after_ms),
            "get_ms_p99_after_kill": _percentile(after_ms, 0.99),
        }
        tg.cancel_scope.cancel()
    return ours


def _udp_rows(n: int, records: int, ours: dict[str, float]) -> list[Row]:
    """hyphal's UDP figures beside bmuller/kademlia's, run the same way right after."""
    log(f"-- bmuller/kademlia 2.2.3, {n} nodes (the baseline)")
    kad = kademlia_run(n, records)
    theirs = {
        "bootstrap_s": kad.bootstrap_s,
        "put_ms_median": statistics.median(kad.put_ms),
        "put_ms_p99": _percentile(kad.put_ms, 0.99),
        "get_success_before": kad.found_before,
        "get_ms_median": statistics.median(kad.get_ms),
        "get_ms_p99": _percentile(kad.get_ms, 0.99),
        "get_success_after_kill": kad.found_after,
        "get_ms_median_after_kill": statistics.median(kad.get_ms_after),
        "get_ms_p99_after_kill": _percentile(kad.get_ms_after, 0.99),
    }
    p99, kad_p99 = ours["get_ms_p99_after_kill"], theirs["get_ms_p99_after_kill"]
    found = ours["get_success_after_kill"]
    return [
        Row(
            name=f"UDP loopback, {n} nodes: get p99 after 30% killed",
            figure=p99,
            unit="ms",
            baseline_name="bmuller/kademlia 2.2.3, same run",
            baseline_figure=kad_p99,
            ratio=kad_p99 / p99,
            ratio_kind="speedup",
            target="≥ 10x lower p99",
            target_ratio=10.0,
            met=kad_p99 / p99 >= 10.0,
            higher_is_better=False,
            note=(
                f"before the kill: get median {ours['get_ms_median']:.1f} ms p99 {ours['get_ms_p99']:.1f} ms "
                f"(kademlia {theirs['get_ms_median']:.1f} / {theirs['get_ms_p99']:.1f} ms); "
                f"put median {ours['put_ms_median']:.1f} ms (kademlia {theirs['put_ms_median']:.1f} ms); "
                f"bootstrap {ours['bootstrap_s']:.1f} s (kademlia {theirs['bootstrap_s']:.1f} s)"
            ),
            details={"hyphal": ours, "kademlia": theirs},
        ),
        Row(
            name=f"UDP loopback, {n} nodes: get success after 30% killed",
            figure=found * 100,
            unit="% found",
            baseline_name="bmuller/kademlia 2.2.3, same run",
            baseline_figure=theirs["get_success_after_kill"] * 100,
            ratio=found / max(theirs["get_success_after_kill"], 1e-9),
            ratio_kind="throughput",
            target="≥ 99.9%",
            met=found >= 0.999,
            note=(
                f"before the kill: {ours['get_success_before']:.1%} "
                f"(kademlia {theirs['get_success_before']:.1%})"
            ),
        ),
    ]


def _seed(i: int) -> bytes:
    return i.to_bytes(4, "little") * 8


def udp(n: int, records: int) -> list[Row]:
    import anyio

    return _udp_rows(n, records, anyio.run(_udp, n, records))


def run(quick: bool, sim: bool = False) -> list[Row]:
    if not sim:
        return run_sections([("udp", lambda: udp(100 if quick else 500, 50 if quick else 200))])
    sizes = (1000, 2000) if quick else (1000, 10_000)
    sections = [("join 500" if quick else "join 1000", lambda: join(500 if quick else 1000))]
    sections += [(f"lookups {n}", lambda n=n: lookups(n)) for n in sizes]  # type: ignore[misc]
    sections.append((f"churn {sizes[-1]}", lambda: churn(sizes[-1])))
    # The size: 10,000 nodes and 10,000 secrets over 24 h (about 2.5 h of wall time).
    durability = (300, 300, 4) if quick else (10_000, 10_000, 24)
    sections.append(("secret durability", lambda: secret_durability(*durability)))
    return run_sections(sections)


class _LivePool:
    """The live hosts, for picking a random one in O(1) (a list scan per pick is quadratic in N)."""

    def __init__(self, hosts: list[SimHost]) -> None:
        self.hosts = list(hosts)
        self._at = {h.index: i for i, h in enumerate(self.hosts)}

    def add(self, host: SimHost) -> None:
        self._at[host.index] = len(self.hosts)
        self.hosts.append(host)

    def remove(self, host: SimHost) -> None:
        i = self._at.pop(host.index)
        last = self.hosts.pop()
        if last is not host:
            self.hosts[i] = last
            self._at[last.index] = i


def _rss_mib() -> int:
    """This process's resident memory (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 2**20
    except (OSError, ValueError, IndexError):
        return 0


def secret_durability(n: int, secrets: int, hours: int, replaced_per_hour: float = 0.1) -> list[Row]:
    """Secrets with n=5 over ``hours`` simulated hours, ``replaced_per_hour`` of the nodes replaced each hour.

    Replacements are spread over the hour: one node crashes (no goodbye) and a
    new one joins by the protocol every ``3600 / (n * replaced_per_hour)`` s.
    Progress is logged after every simulated hour: secrets with no live copy
    so far, the fewest live copies of a secret, datagrams and wall time.
    """
    from hyphal.secrets import SecretStore, locator, secret_id
    from hyphal.signing import KeyPair

    t0 = time.perf_counter()
    config = DhtConfig(maintenance_interval=300, refresh_interval=3600)
    sim = Simulator(n + 3, config=config)
    stores: dict[int, SecretStore] = {}
    sim.on_node.append(lambda h: stores.__setitem__(h.index, SecretStore(h.node, now=sim.now, interval=300)))
    hosts = sim.add_nodes(n)
    sim.fill_tables()
    owner = KeyPair(b"\x5e" * 32)
    urls = [f"https://service-{i}.example" for i in range(secrets)]
    ids = [secret_id(owner.public_key, locator(u)) for u in urls]
    # Deployed DEPLOY_BATCH at a time: one after the other, 10,000 puts would take over an hour
    # of virtual time, and the network's hourly maintenance would run before the churn starts.
    for first in range(0, secrets, DEPLOY_BATCH):
        batch = [(hosts[i * 7919 % n], urls[i]) for i in range(first, min(first + DEPLOY_BATCH, secrets))]
        ops = [
            sim.start(host, lambda nd, now, u=url, h=host: stores[h.index].put(now, owner, u, b"k"))
            for host, url in batch
        ]
        sim.run_all(ops)
        for op in ops:
            check(op.error is None, f"deploying a secret failed: {op.error}")
    sim.run_for(60)
    setup = time.perf_counter() - t0
    log(f"   {n} nodes, {secrets} secrets deployed in {setup:.1f} s ({sim.delivered} datagrams)")
    # Millions of long-lived objects (tables, stores): the cyclic GC re-scanning them was ~20% of
    # the run at 3,000 nodes. They are frozen out of its scans after the setup and every hour.
    gc.collect()
    thresholds = gc.get_threshold()
    gc.set_threshold(50_000, 20, 1000)
    gc.freeze()
    live = _LivePool(hosts)

    def copies() -> list[int]:
        held: dict[bytes, int] = {}
        for h in live.hosts:
            for sid in stores[h.index].held:
                held[sid] = held.get(sid, 0) + 1
        return sorted(held.get(sid, 0) for sid in ids)

    per_hour = round(n * replaced_per_hour)
    step = 3600 / per_hour
    replaced, hourly = 0, []
    for hour in range(1, hours + 1):
        hour_t0, hour_datagrams = time.perf_counter(), sim.delivered
        for _ in range(per_hour):
            victim = sim.rng.choice(live.hosts)
            sim.remove(victim)  # a crash, with no goodbye; its memory is freed at the hour's collection
            live.remove(victim)
            del stores[victim.index]
            newcomer = sim.add_node()
            sim.join(newcomer, sim.rng.sample(live.hosts, 3))
            live.add(newcomer)
            sim.call(sim.now + 5, lambda h=newcomer: h.alive and stores[h.index].pull(sim.now), newcomer)
            sim.run_for(step)
            replaced += 1
        counts = copies()
        stats = {
            "hour": hour,
            "lost": sum(1 for c in counts if c == 0),
            "copies_min": counts[0],
            "below_n": sum(1 for c in counts if c < 5),
            "datagrams": sim.delivered - hour_datagrams,
            "wall_s": time.perf_counter() - hour_t0,
        }
        hourly.append(stats)
        # The nodes removed this hour were frozen while alive: frozen cycles are never collected,
        # so they are thawed, collected once, and the survivors frozen again.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        log(
            f"   hour {hour}/{hours}: {replaced} replaced, lost so far {stats['lost']}, "
            f"fewest copies {stats['copies_min']} ({stats['below_n']} under 5), "
            f"{stats['datagrams']} datagrams, {stats['wall_s']:.0f} s "
            f"(total {time.perf_counter() - t0:.0f} s, {_rss_mib()} MiB)"
        )
    sim.run_for(600)
    gc.unfreeze()
    gc.set_threshold(*thresholds)
    counts = copies()
    lost = sum(1 for c in counts if c == 0)
    readable = 0
    for url in urls:
        host = sim.rng.choice(live.hosts)
        op = sim.run_until_done(
            sim.start(
                host, lambda nd, now, u=url, h=host: stores[h.index].get(now, owner, owner.public_key, u)
            )
        )
        readable += op.error is None and op.result() == b"k"
    wall = time.perf_counter() - t0
    median = counts[len(counts) // 2]
    return [
        Row(
            name=f"secrets readable after {hours} h, {n} nodes",
            figure=100 * readable / secrets,
            unit="% readable",
            target="100%, 0 lost",
            met=readable == secrets and lost == 0,
            note=(
                f"{secrets} secrets, n=5, {replaced} nodes replaced ({replaced_per_hour:.0%}/h); "
                f"lost {lost}; live copies min {counts[0]} median {median}; wall {wall / 60:.0f} min"
            ),
            details={
                "nodes": n,
                "secrets": secrets,
                "hours": hours,
                "lost": lost,
                "readable": readable,
                "replaced": replaced,
                "copies_min": counts[0],
                "copies_median": median,
                "datagrams": sim.delivered,
                "setup_wall_s": setup,
                "wall_s": wall,
                "hourly": hourly,
            },
        )
    ]
