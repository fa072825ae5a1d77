"""Signed DHT records (dht/records.py) and the saved routing table (dht/routing.py).

Mode byte, then:

0. a node record (decoded and verified; it must encode back to its bytes);
1. an announce (the same);
2. one address (it must encode back to the bytes it used);
3. a routing table as saved at shutdown (unverifiable records are skipped).

Refusal: ``DecodeError`` or ``SignatureError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from fuzz.fixtures import mode
from fuzz.harness import Target
from fuzz.targets.dht_messages import records
from hyphal.dht.records import AnnounceRecord, NodeRecord, decode_address, encode_address
from hyphal.dht.routing import TABLE_VERSION, RoutingTable
from hyphal.errors import DecodeError, SignatureError


def run(data: bytes) -> None:
    kind, data = mode(data, 4)
    if kind == 0:
        assert NodeRecord.decode(data).encode() == data, "a node record is not canonical"
    elif kind == 1:
        assert AnnounceRecord.decode(data).encode() == data, "an announce is not canonical"
    elif kind == 2:
        addr, end = decode_address(data)
        assert encode_address(addr) == data[:end], "an address is not canonical"
    else:
        RoutingTable.decode_records(data)


def seeds() -> Iterator[bytes]:
    a, b, announce = records()
    yield b"\x00" + a.encode()
    yield b"\x00" + b.encode()
    yield b"\x01" + announce.encode()
    yield b"\x02" + encode_address(("192.0.2.1", 80))
    yield b"\x02" + encode_address(("::1", 65535))
    table = [a.encode(), b.encode(), b"\x01junk"]
    yield (
        b"\x03"
        + struct.pack("<BH", TABLE_VERSION, len(table))
        + b"".join(struct.pack("<H", len(r)) + r for r in table)
    )


TARGET = Target("dht_records", run, (DecodeError, SignatureError), seeds)
