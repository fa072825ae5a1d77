"""DHT datagrams (dht/messages.py) and the payloads of the built-in methods, as a node receives them.

Mode byte, then:

0. a datagram (request or response);
1. a LOOKUP response's announces; 2. a GET_IMMUTABLE response's optional value;
3. a PUT_MUTABLE request's payload; 4. a SEQ_TOO_OLD / CAS_MISMATCH seq.

Everything decoded must encode back to its bytes. Refusal: ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import keypair, mode
from fuzz.harness import Target
from hyphal.dht.messages import (
    Method,
    Request,
    Status,
    decode_announces,
    decode_message,
    decode_mutable_put,
    decode_optional_value,
    decode_seq,
    encode_announces,
    encode_mutable_put,
    encode_optional_value,
    encode_request,
    encode_response,
    encode_seq,
)
from hyphal.dht.records import AnnounceRecord, NodeRecord
from hyphal.errors import DecodeError
from hyphal.signed_value import SignedValue


def run(data: bytes) -> None:
    kind, data = mode(data, 5)
    if kind == 0:
        message = decode_message(data)
        assert message.encode() == data, f"a {type(message).__name__} decoded from a non-canonical encoding"
    elif kind == 1:
        assert encode_announces(decode_announces(data)) == data, "announces are not canonical"
    elif kind == 2:
        assert encode_optional_value(decode_optional_value(data)) == data, (
            "an optional value is not canonical"
        )
    elif kind == 3:
        assert encode_mutable_put(*decode_mutable_put(data)) == data, "a PUT_MUTABLE is not canonical"
    else:
        assert encode_seq(decode_seq(data)) == data, "a seq is not canonical"


def records() -> tuple[NodeRecord, NodeRecord, AnnounceRecord]:
    a = NodeRecord.sign(keypair(8), 1, (("192.0.2.7", 7300),))
    b = NodeRecord.sign(keypair(9), 5, (("2001:db8::1", 7300), ("198.51.100.1", 1)))
    announce = AnnounceRecord.sign(keypair(9), bytes(range(32)), 1_700_000_000, 3600, (("192.0.2.9", 7301),))
    return a, b, announce


def seeds() -> Iterator[bytes]:
    a, b, announce = records()
    target = bytes(range(32))
    value = SignedValue.sign(keypair(10), 3, b"value", b"salt").encode()
    yield b"\x00" + Request(Method.PING, 1).encode()
    yield b"\x00" + encode_request(Method.FIND_NODE, 2**64 - 1, target, b"", b"", a.encode())
    yield b"\x00" + encode_request(Method.PUT_MUTABLE, 7, target, b"t" * 32, encode_mutable_put(value, 2))
    yield b"\x00" + encode_response(
        Method.FIND_NODE, 2, a.encode(), ("203.0.113.5", 4000), nodes=(b.encode(),)
    )
    yield b"\x00" + encode_response(
        Method.GET_MUTABLE, 3, b.encode(), ("2001:db8::7", 9), Status.OK, b"tok", (), value
    )
    yield b"\x01" + encode_announces([announce.encode()])
    yield b"\x01" + encode_announces([])
    yield b"\x02" + encode_optional_value(b"an immutable value")
    yield b"\x02" + encode_optional_value(None)
    yield b"\x03" + encode_mutable_put(value, None)
    yield b"\x03" + encode_mutable_put(value, 1)
    yield b"\x04" + encode_seq(12)


TARGET = Target("dht_messages", run, (DecodeError,), seeds)
