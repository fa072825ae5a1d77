"""``hyphal dht status|peers|lookup`` and ``hyphal peers``: the node's DHT and its connections."""

from __future__ import annotations

import click

from hyphal.cli.common import call, command_options, emit


@click.group("dht")
def dht_group() -> None:
    """The node's DHT: its routing table, the records it holds, lookups."""


@dht_group.command("status")
@command_options
def status(ctx: click.Context) -> None:
    """This node in the DHT: id, address, routing table and records held."""
    found = call(ctx, "dht.status")
    kinds = ", ".join(f"{n} {kind}" for kind, n in found["records_by_kind"].items() if n)
    buckets = found["buckets"]
    text = "\n".join(
        [
            f"node id:  {found['node_id']}",
            f"address:  {found['address']} (UDP)",
            f"table:    {found['table_size']} node(s) in {len(buckets)} bucket(s) {buckets}",
            f"records:  {found['records']} held for others{f' ({kinds})' if kinds else ''}",
        ]
    )
    emit(ctx, found, text)


@dht_group.command("peers")
@command_options
def peers_in_table(ctx: click.Context) -> None:
    """The routing table's contacts."""
    found = call(ctx, "dht.peers")
    lines = [
        f"{p['node_id'][:16]}…  {p['address']}  seen {p['last_seen_ago']}s ago"
        + (f", {p['failures']} failure(s)" if p["failures"] else "")
        for p in found
    ]
    empty = "no DHT peers (start the node with --bootstrap HOST:PORT)"
    emit(ctx, found, "\n".join(lines) if lines else empty)


@dht_group.command("lookup")
@click.argument("key")
@command_options
def lookup(ctx: click.Context, key: str) -> None:
    """The nodes closest to KEY, and the peers announced on it (KEY as a topic)."""
    found = call(ctx, "dht.lookup", {"key": key})
    lines = [f"closest nodes ({len(found['closest'])}):"]
    lines += [f"  {c['node_id'][:16]}…  {c['address']}" for c in found["closest"]]
    lines.append(f"announced peers ({len(found['announces'])}):")
    lines += [f"  {a['public_key'][:16]}…  {', '.join(a['addresses'])}" for a in found["announces"]]
    emit(ctx, found, "\n".join(lines))


@click.command("peers")
@command_options
def peers(ctx: click.Context) -> None:
    """The node's connections, and the protocol channels open on each."""
    found = call(ctx, "peers")
    lines: list[str] = []
    for p in found:
        how = "dialled" if p["initiator"] else "accepted"
        lines.append(f"{p['public_key'][:16]}…  {p['address']}  ({how}, {len(p['channels'])} channel(s))")
        lines += [f"    {c['protocol']}  {c['id'][:16]}…" for c in p["channels"]]
    emit(ctx, found, "\n".join(lines) if lines else "no connections")


__all__ = ["dht_group", "peers"]
