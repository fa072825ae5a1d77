"""Control methods on the node's DHT and connections: ``dht.status``, ``dht.peers``,
``dht.lookup`` and ``peers``."""

from __future__ import annotations

import time

import anyio

from hyphal.control.encoding import Json
from hyphal.control.methods.records import key_param
from hyphal.control.methods.registry import Call, method
from hyphal.dht.record_store import RecordKind
from hyphal.net.address import format_address

DHT_TIMEOUT = 30.0


@method("dht.status")
async def dht_status(call: Call) -> Json:
    dht = call.node.dht
    node = dht.node
    kinds = {kind.name.lower(): 0 for kind in RecordKind}
    other = 0
    for row in node.store.records():
        try:
            kinds[RecordKind(row.kind).name.lower()] += 1
        except ValueError:  # an extension's kind (the secret store's, say)
            other += 1
    return {
        "node_id": node.id.hex(),
        "public_key": node.keypair.public_key.hex(),
        "address": format_address(dht.address),
        "table_size": len(node.table),
        "buckets": node.table.bucket_sizes(),
        "records": len(node.store),
        "records_by_kind": {**kinds, "other": other},
    }


@method("dht.peers")
async def dht_peers(call: Call) -> list[Json]:
    """The routing table's contacts, nearest bucket last (as the table keeps them)."""
    now = time.time()
    return [
        {
            "node_id": c.id.hex(),
            "public_key": c.record.public_key.hex(),
            "address": format_address(c.addr),
            "last_seen_ago": max(0.0, round(now - c.last_seen, 1)),
            "failures": c.failures,
        }
        for c in call.node.dht.node.table
    ]


@method("dht.lookup", "key")
async def dht_lookup(call: Call) -> Json:
    """The nodes closest to ``key``, and the peers announced on it as a topic."""
    key = key_param(call, "a DHT key or topic")
    with anyio.fail_after(DHT_TIMEOUT):
        found = await call.node.dht.lookup(key)
    return {
        "key": key.hex(),
        "closest": [
            {"node_id": record.id.hex(), "address": format_address(addr)}
            for record, addr, _token in found.contacts
        ],
        "announces": [
            {
                "public_key": a.public_key.hex(),
                "addresses": [format_address(x) for x in a.addresses],
                "issued_at": a.issued_at,
                "expires": a.expires,
            }
            for a in found.announces
        ],
        "queries": found.queries,
    }


@method("peers")
async def peers(call: Call) -> list[Json]:
    """Every open connection and the protocol channels open on it."""
    return [
        {
            "public_key": connection.remote_public_key.hex(),
            "address": connection.peer,
            "initiator": connection.is_initiator,
            "channels": sorted(
                ({"protocol": c.protocol, "id": c.id.hex()} for c in connection.channels()),
                key=lambda c: (c["protocol"], c["id"]),
            ),
        }
        for connection in call.node.pool.connections()
    ]
