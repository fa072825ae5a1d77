"""DHT formats: node records, announces, addresses, datagrams and payloads; every decoder fuzzed."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.dht import messages as m
from hyphal.dht.ids import immutable_key, node_id, random_id_with_prefix
from hyphal.dht.records import (
    MAX_ANNOUNCE_TTL,
    AnnounceRecord,
    NodeRecord,
    decode_address,
    encode_address,
)
from hyphal.dht.routing import RoutingTable
from hyphal.errors import DecodeError, InvalidInput, SignatureError, VerificationError
from hyphal.signing import KeyPair, verify
from hyphal.xor import bucket_index

KEY = KeyPair(b"\x01" * 32)
OTHER = KeyPair(b"\x02" * 32)
ADDRS = (("192.0.2.1", 7400), ("2001:db8::1", 7401))


def test_node_record_roundtrip_and_id() -> None:
    record = NodeRecord.sign(KEY, 5, ADDRS)
    assert record.id == node_id(KEY.public_key)
    decoded = NodeRecord.decode(record.encode())
    assert decoded == record
    assert decoded.addresses == ADDRS
    # Plain ed25519 over the documented signable.
    assert verify(KEY.public_key, record.signable(), record.signature)
    assert len(record.encode()) == 1 + 32 + 8 + 1 + 7 + 19 + 64


def test_node_record_forgeries_are_refused() -> None:
    record = NodeRecord.sign(KEY, 5, ADDRS)
    raw = bytearray(record.encode())
    raw[1 + 32] ^= 1  # the seq
    with pytest.raises(SignatureError):
        NodeRecord.decode(bytes(raw))
    # Someone else's key with our signature.
    stolen = NodeRecord(OTHER.public_key, 5, ADDRS, record.signature)
    with pytest.raises(SignatureError):
        NodeRecord.decode(stolen.encode())


@pytest.mark.parametrize(
    "addresses",
    [(), tuple(("10.0.0.1", p) for p in range(5)), (("10.0.0.1", 1), ("10.0.0.1", 1))],
)
def test_node_record_address_rules(addresses: tuple[tuple[str, int], ...]) -> None:
    with pytest.raises(InvalidInput):
        NodeRecord.sign(KEY, 1, addresses)


def test_several_nodes_may_share_an_ip() -> None:
    a = NodeRecord.sign(KEY, 1, (("198.51.100.9", 1000),))
    b = NodeRecord.sign(OTHER, 1, (("198.51.100.9", 1001),))
    assert a.id != b.id
    assert a.addresses[0][0] == b.addresses[0][0]


def test_address_encoding() -> None:
    assert encode_address(("127.0.0.1", 258)) == b"\x04\x7f\x00\x00\x01\x02\x01"
    assert decode_address(encode_address(("::1", 9)))[0] == ("::1", 9)
    with pytest.raises(InvalidInput):
        encode_address(("localhost", 1))
    with pytest.raises(InvalidInput):
        encode_address(("127.0.0.1", 70000))
    with pytest.raises(DecodeError):
        decode_address(b"\x05" + bytes(6))


def test_announce_roundtrip_and_forgery() -> None:
    topic = b"\x33" * 32
    a = AnnounceRecord.sign(KEY, topic, 1_800_000_000, 600, ADDRS[:1])
    assert AnnounceRecord.decode(a.encode()) == a
    assert a.expires == 1_800_000_600
    raw = bytearray(a.encode())
    raw[1] ^= 1  # another topic
    with pytest.raises(SignatureError):
        AnnounceRecord.decode(bytes(raw))
    with pytest.raises(InvalidInput):
        AnnounceRecord.sign(KEY, topic, 0, MAX_ANNOUNCE_TTL + 1, ADDRS[:1])


def test_ids() -> None:
    assert immutable_key(b"abc").hex().startswith("6437b3ac")  # b3sum of "abc"
    import random

    rng = random.Random(1)
    own = node_id(KEY.public_key)
    for shared in (0, 1, 7, 100, 255):
        assert bucket_index(own, random_id_with_prefix(own, shared, rng)) == shared


def test_datagram_roundtrip() -> None:
    record = NodeRecord.sign(KEY, 1, ADDRS).encode()
    req = m.Request(m.Method.GET_MUTABLE, 2**64 - 1, b"\x05" * 32, b"t" * 16, b"p", record)
    assert m.decode_message(req.encode()) == req
    bare = m.Request(m.Method.PING, 0)
    assert m.decode_message(bare.encode()) == bare
    resp = m.Response(m.Method.FIND_NODE, 7, record, ("10.0.0.2", 5), m.Status.OK, b"x", (record,) * 20, b"")
    assert m.decode_message(resp.encode()) == resp
    with pytest.raises(InvalidInput):
        m.Response(m.Method.FIND_NODE, 7, record, ("10.0.0.2", 5), nodes=(record,) * 21).encode()
    with pytest.raises(InvalidInput):
        m.Request(m.Method.PING, 0, token=b"x" * 33).encode()


def test_datagram_rejections() -> None:
    good = m.Request(m.Method.PING, 1).encode()
    for bad in (b"", good[:-1], good + b"\x00", b"\x02" + good[1:], good[:1] + b"\x09" + good[2:]):
        with pytest.raises(DecodeError):
            m.decode_message(bad)
    with pytest.raises(DecodeError):
        m.decode_message(bytes(m.MAX_DATAGRAM_SIZE + 1))


def test_payload_codecs() -> None:
    assert m.decode_announces(m.encode_announces([b"a", b"bc"])) == [b"a", b"bc"]
    assert m.decode_optional_value(m.encode_optional_value(None)) is None
    assert m.decode_optional_value(m.encode_optional_value(b"")) == b""
    assert m.decode_mutable_put(m.encode_mutable_put(b"sv", 3)) == (b"sv", 3)
    assert m.decode_mutable_put(m.encode_mutable_put(b"sv", None)) == (b"sv", None)
    assert m.decode_seq(m.encode_seq(9)) == 9


_DECODERS = [
    m.decode_message,
    m.decode_announces,
    m.decode_optional_value,
    m.decode_mutable_put,
    m.decode_seq,
    RoutingTable.decode_records,
]


@given(st.sampled_from(_DECODERS), st.binary(max_size=600))
def test_fuzz_decoders_raise_only_decode_error(decoder: object, data: bytes) -> None:
    with contextlib.suppress(DecodeError):
        decoder(data)  # type: ignore[operator]


def _valid_datagrams() -> list[bytes]:
    record = NodeRecord.sign(KEY, 1, ADDRS).encode()
    return [
        m.Request(m.Method.ANNOUNCE, 9, b"\x01" * 32, b"t" * 16, b"payload", record).encode(),
        m.Response(m.Method.LOOKUP, 9, record, ("::1", 1), 0, b"tok", (record, record), b"\x00").encode(),
        RoutingTable(node_id(OTHER.public_key)).encode(),
    ]


@given(st.sampled_from(_valid_datagrams()), st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255))))
def test_fuzz_mutated_datagrams(data: bytes, flips: list[tuple[int, int]]) -> None:
    raw = bytearray(data)
    for at, value in flips:
        if raw:
            raw[at % len(raw)] = value
    for decoder in (m.decode_message, RoutingTable.decode_records):
        with contextlib.suppress(DecodeError):
            decoder(bytes(raw))


@given(st.binary(max_size=300), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=4))
def test_fuzz_record_decoders(prefix: bytes, flips: list[tuple[int, int]]) -> None:
    """Record decoders raise DecodeError for bad structure and SignatureError for forgeries, nothing else."""
    for good in (
        NodeRecord.sign(KEY, 1, ADDRS).encode(),
        AnnounceRecord.sign(KEY, b"\x01" * 32, 5, 60, ADDRS).encode(),
    ):
        raw = bytearray(good if not prefix else prefix + good[len(prefix) :])
        for at, value in flips:
            raw[at % len(raw)] = value
        for decode in (NodeRecord.decode, AnnounceRecord.decode):
            with contextlib.suppress(DecodeError, VerificationError):
                decode(bytes(raw))
