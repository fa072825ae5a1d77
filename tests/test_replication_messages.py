"""Replication wire messages, the feed capability, and the range sets they carry."""

from __future__ import annotations

import itertools
import struct

import blake3 as reference_blake3
import pytest
from hypothesis import given
from hypothesis import strategies as st

from hyphal.errors import DecodeError, InvalidInput
from hyphal.replication.capability import (
    CAPABILITY_CONTEXT,
    capability_key,
    capability_mac,
    verify_capability,
)
from hyphal.replication.messages import (
    MAX_BLOCKS_PER_REQUEST,
    MAX_HEAD_SIZE,
    MAX_LENGTH,
    MAX_MESSAGE_SIZE,
    MAX_PROOF_SIZE,
    MAX_RANGES_PER_MESSAGE,
    Auth,
    Cancel,
    Data,
    Have,
    Head,
    Message,
    MessageType,
    NoData,
    NoDataReason,
    Request,
    Sync,
    Unwant,
    Want,
    decode_message,
    encode_range_messages,
)
from hyphal.replication.ranges import OPEN_END, RangeSet

U64 = 2**64 - 1

EXAMPLES: list[Message] = [
    Auth(bytes(range(32))),
    Sync(0, 0, b""),
    Sync(3, 11, b"signed head"),
    Sync(U64, MAX_LENGTH, b"h" * MAX_HEAD_SIZE),
    Have(((0, 11),)),
    Have(((0, 3), (5, 9), (MAX_LENGTH - 1, MAX_LENGTH))),
    Want(((10, OPEN_END),)),
    Want(((0, 1), (2, 3))),
    Unwant(((4, 5), (7, OPEN_END))),
    Request(7, 0, 11, 10, 11, 9),
    Request(0xFFFFFFFF, U64, MAX_LENGTH, 0, MAX_BLOCKS_PER_REQUEST, 0),
    Request(1, 0, 11, 9, 9, 9),
    Cancel(0),
    Cancel(0xFFFFFFFF),
    Data(5, b"", b"proof" * 8, ()),
    Data(6, b"head", b"p" * 37, (b"block one", b"", b"\x00" * 1000)),
    NoData(9, NoDataReason.NOT_AVAILABLE),
    NoData(9, NoDataReason.TOO_LARGE),
    Head(b"a newer head"),
]


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: type(m).__name__)
def test_round_trip(message: Message) -> None:
    encoded = message.encode()
    assert encoded[0] == MessageType[_type_name(message)]
    decoded = decode_message(encoded)
    assert decoded == message
    assert type(decoded) is type(message)
    # The encoding is canonical: re-encoding what we decoded gives the same bytes.
    assert decoded.encode() == encoded


def _type_name(message: Message) -> str:
    return {"NoData": "NO_DATA"}.get(type(message).__name__, type(message).__name__.upper())


def test_exact_layouts() -> None:
    assert Auth(b"m" * 32).encode() == b"\x01" + b"m" * 32
    assert Sync(1, 2, b"hd").encode() == b"\x02" + struct.pack("<QQI", 1, 2, 2) + b"hd"
    assert Have(((1, 2), (4, 8))).encode() == b"\x03" + struct.pack("<IQQQQ", 2, 1, 2, 4, 8)
    assert Want(((0, OPEN_END),)).encode() == b"\x04" + struct.pack("<IQQ", 1, 0, 2**64 - 1)
    assert Unwant(((3, 4),)).encode() == b"\x05" + struct.pack("<IQQ", 1, 3, 4)
    assert Request(7, 1, 11, 10, 11, 9).encode() == b"\x06" + struct.pack("<IQQQQQ", 7, 1, 11, 10, 11, 9)
    assert Cancel(7).encode() == b"\x07" + struct.pack("<I", 7)
    assert Data(7, b"H", b"P", (b"ab", b"c")).encode() == (
        b"\x08"
        + struct.pack("<II", 7, 1)
        + b"H"
        + struct.pack("<I", 1)
        + b"P"
        + struct.pack("<II", 2, 2)
        + b"ab"
        + struct.pack("<I", 1)
        + b"c"
    )
    assert NoData(7, NoDataReason.BUSY).encode() == b"\x09" + struct.pack("<IB", 7, 4)
    assert Head(b"xyz").encode() == b"\x0a" + struct.pack("<I", 3) + b"xyz"


def test_data_blocks_are_views_of_the_received_buffer() -> None:
    received = bytearray(Data(1, b"h", b"p" * 40, (b"first", b"second")).encode())
    decoded = decode_message(received)
    assert isinstance(decoded, Data)
    assert all(isinstance(b, memoryview) and b.obj is received for b in decoded.blocks)
    assert isinstance(decoded.proof, memoryview)
    assert decoded.proof.obj is received
    assert [bytes(b) for b in decoded.blocks] == [b"first", b"second"]


def test_accepts_any_buffer() -> None:
    encoded = Cancel(3).encode()
    assert decode_message(memoryview(encoded)) == Cancel(3)
    assert decode_message(bytearray(encoded)) == Cancel(3)
    with pytest.raises(DecodeError):
        decode_message(memoryview(bytes(8)).cast("Q"))  # not bytes: 8-byte items


# -- rejections -----------------------------------------------------------------------

BAD = {
    "empty": b"",
    "unknown type": b"\x00",
    "unknown type 11": b"\x0b" + bytes(8),
    "short auth": b"\x01" + bytes(31),
    "long auth": b"\x01" + bytes(33),
    "sync without head": b"\x02" + struct.pack("<QQI", 0, 5, 0),
    "sync beyond 2^62": b"\x02" + struct.pack("<QQI", 0, 2**62 + 1, 1) + b"h",
    "sync head too large": b"\x02" + struct.pack("<QQI", 0, 1, MAX_HEAD_SIZE + 1) + bytes(MAX_HEAD_SIZE + 1),
    "sync head truncated": b"\x02" + struct.pack("<QQI", 0, 1, 5) + b"abc",
    "have nothing": b"\x03" + struct.pack("<I", 0),
    "have empty range": b"\x03" + struct.pack("<IQQ", 1, 4, 4),
    "have backwards range": b"\x03" + struct.pack("<IQQ", 1, 5, 4),
    "have unsorted": b"\x03" + struct.pack("<IQQQQ", 2, 5, 6, 1, 2),
    "have overlapping": b"\x03" + struct.pack("<IQQQQ", 2, 1, 5, 4, 6),
    "have adjacent": b"\x03" + struct.pack("<IQQQQ", 2, 1, 5, 5, 6),
    "have open end": b"\x03" + struct.pack("<IQQ", 1, 0, 2**64 - 1),
    "have beyond 2^62": b"\x03" + struct.pack("<IQQ", 1, 0, 2**62 + 1),
    "have too many": b"\x03" + struct.pack("<I", MAX_RANGES_PER_MESSAGE + 1),
    "have count lies": b"\x03" + struct.pack("<IQQ", 2, 0, 1),
    "want end 2^64-2": b"\x04" + struct.pack("<IQQ", 1, 0, 2**64 - 2),
    "request start > end": b"\x06" + struct.pack("<IQQQQQ", 1, 0, 11, 5, 4, 0),
    "request end > length": b"\x06" + struct.pack("<IQQQQQ", 1, 0, 11, 10, 12, 0),
    "request upgrade > length": b"\x06" + struct.pack("<IQQQQQ", 1, 0, 11, 10, 11, 12),
    "request length > 2^62": b"\x06" + struct.pack("<IQQQQQ", 1, 0, 2**62 + 1, 0, 1, 0),
    "request too many blocks": b"\x06" + struct.pack("<IQQQQQ", 1, 0, 5000, 0, MAX_BLOCKS_PER_REQUEST + 1, 0),
    "request for nothing": b"\x06" + struct.pack("<IQQQQQ", 1, 0, 11, 4, 4, 11),
    "request truncated": b"\x06" + struct.pack("<IQQQQ", 1, 0, 11, 10, 11),
    "cancel truncated": b"\x07" + b"\x01\x00",
    "no_data reason 0": b"\x09" + struct.pack("<IB", 1, 0),
    "no_data reason 99": b"\x09" + struct.pack("<IB", 1, 99),
    "data head too large": b"\x08" + struct.pack("<II", 1, MAX_HEAD_SIZE + 1) + bytes(MAX_HEAD_SIZE + 1),
    "data proof too large": b"\x08"
    + struct.pack("<III", 1, 0, MAX_PROOF_SIZE + 1)
    + bytes(MAX_PROOF_SIZE + 1),
    "data too many blocks": b"\x08" + struct.pack("<IIII", 1, 0, 0, MAX_BLOCKS_PER_REQUEST + 1),
    "data block count lies": b"\x08" + struct.pack("<IIIII", 1, 0, 0, 2, 1) + b"x",
    "data block truncated": b"\x08" + struct.pack("<IIIII", 1, 0, 0, 1, 10) + b"short",
    "head empty": b"\x0a" + struct.pack("<I", 0),
    "head trailing": b"\x0a" + struct.pack("<I", 1) + b"ab",
    "cancel trailing": Cancel(1).encode() + b"\x00",
    "too large": b"\x08" + bytes(MAX_MESSAGE_SIZE),
}


@pytest.mark.parametrize("data", BAD.values(), ids=BAD.keys())
def test_rejects(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_message(data)


def test_every_strict_prefix_is_rejected() -> None:
    for message in EXAMPLES:
        encoded = message.encode()
        for cut in range(len(encoded) if len(encoded) < 200 else 200):
            with pytest.raises(DecodeError):
                decode_message(encoded[:cut])


@pytest.mark.parametrize(
    "make",
    [
        lambda: Auth(b"short"),
        lambda: Sync(0, 1, b""),
        lambda: Sync(-1, 0, b""),
        lambda: Have(()),
        lambda: Have(((3, 1),)),
        lambda: Have(((0, OPEN_END),)),
        lambda: Want(((0, 2), (2, 3))),
        lambda: Request(1, 0, 10, 4, 4, 10),
        lambda: Request(2**32, 0, 10, 0, 1, 0),
        lambda: Request(1, 0, 10, 0, 11, 0),
        lambda: Cancel(-1),
        lambda: Data(1, b"", b"p", tuple(b"" for _ in range(MAX_BLOCKS_PER_REQUEST + 1))),
        lambda: Data(1, b"", b"p", (bytes(MAX_MESSAGE_SIZE),)),
        lambda: Head(b""),
    ],
)
def test_encoders_refuse_what_decoders_reject(make: object) -> None:
    with pytest.raises(InvalidInput):
        make().encode()  # type: ignore[operator]


def test_range_lists_are_split_over_messages() -> None:
    ranges = [(2 * i, 2 * i + 1) for i in range(MAX_RANGES_PER_MESSAGE * 2 + 5)]
    messages = [decode_message(m) for m in encode_range_messages(Have, ranges)]
    assert [len(m.ranges) for m in messages] == [MAX_RANGES_PER_MESSAGE, MAX_RANGES_PER_MESSAGE, 5]  # type: ignore[union-attr]
    assert [r for m in messages for r in m.ranges] == ranges  # type: ignore[union-attr]
    assert encode_range_messages(Want, []) == []


# -- hypothesis: round trips and fuzzing ------------------------------------------------

u32 = st.integers(0, 2**32 - 1)
u64 = st.integers(0, 2**64 - 1)
lengths = st.integers(0, MAX_LENGTH)
small_bytes = st.binary(max_size=64)


@st.composite
def range_lists(draw: st.DrawFn, open_end: bool) -> tuple[tuple[int, int], ...]:
    points = sorted(draw(st.sets(st.integers(0, MAX_LENGTH), min_size=2, max_size=20)))
    pairs = [(points[i], points[i + 1]) for i in range(0, len(points) - 1, 3)]
    if open_end and draw(st.booleans()):
        pairs[-1] = (pairs[-1][0], OPEN_END)
    return tuple(pairs)


@st.composite
def requests(draw: st.DrawFn) -> Request:
    length = draw(st.integers(1, MAX_LENGTH))
    start = draw(st.integers(0, length))
    end = draw(st.integers(start, min(length, start + MAX_BLOCKS_PER_REQUEST)))
    upgrade_from = draw(st.integers(0, length - 1 if start == end else length))
    return Request(draw(u32), draw(u64), length, start, end, upgrade_from)


messages = st.one_of(
    st.builds(Auth, st.binary(min_size=32, max_size=32)),
    st.builds(Sync, u64, st.just(0), st.just(b"")),
    st.builds(Sync, u64, st.integers(1, MAX_LENGTH), st.binary(min_size=1, max_size=64)),
    st.builds(Have, range_lists(open_end=False)),
    st.builds(Want, range_lists(open_end=True)),
    st.builds(Unwant, range_lists(open_end=True)),
    requests(),
    st.builds(Cancel, u32),
    st.builds(Data, u32, small_bytes, small_bytes, st.lists(small_bytes, max_size=8).map(tuple)),
    st.builds(NoData, u32, st.sampled_from(NoDataReason)),
    st.builds(Head, st.binary(min_size=1, max_size=64)),
)


@given(messages)
def test_round_trip_property(message: Message) -> None:
    encoded = message.encode()
    assert decode_message(encoded) == message
    assert decode_message(encoded).encode() == encoded


@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(data: bytes) -> None:
    _decode_or_decode_error(data)


@given(st.sampled_from(MessageType), st.binary(max_size=200))
def test_fuzz_known_type_arbitrary_body(kind: MessageType, body: bytes) -> None:
    _decode_or_decode_error(bytes([kind]) + body)


@given(messages, st.data())
def test_fuzz_mutated_messages(message: Message, data: st.DataObject) -> None:
    encoded = bytearray(message.encode())
    for _ in range(data.draw(st.integers(1, 4))):
        choice = data.draw(st.sampled_from(["flip", "cut", "extend"]))
        if choice == "flip" and encoded:
            i = data.draw(st.integers(0, len(encoded) - 1))
            encoded[i] = data.draw(st.integers(0, 255))
        elif choice == "cut" and encoded:
            del encoded[data.draw(st.integers(0, len(encoded) - 1)) :]
        else:
            encoded += data.draw(st.binary(min_size=1, max_size=16))
    _decode_or_decode_error(bytes(encoded))


def _decode_or_decode_error(data: bytes) -> None:
    try:
        message = decode_message(data)
    except DecodeError:
        return
    # Anything accepted is canonical.
    assert message.encode() == data


# -- capability ---------------------------------------------------------------------------

FEED_KEY = bytes(range(32))
HANDSHAKE = b"h" * 32


def test_capability_matches_the_definition() -> None:
    key = reference_blake3.blake3(FEED_KEY, derive_key_context=CAPABILITY_CONTEXT).digest()
    assert capability_key(FEED_KEY) == key
    for role in (True, False):
        expected = reference_blake3.blake3(HANDSHAKE + bytes([role]), key=key).digest()
        assert capability_mac(key, HANDSHAKE, role) == expected


def test_capability_binds_key_connection_and_role() -> None:
    key = capability_key(FEED_KEY)
    mac = capability_mac(key, HANDSHAKE, True)
    assert verify_capability(key, HANDSHAKE, True, mac)
    assert not verify_capability(key, HANDSHAKE, False, mac)  # reflected back
    assert not verify_capability(key, b"g" * 32, True, mac)  # replayed on another connection
    assert not verify_capability(capability_key(bytes(32)), HANDSHAKE, True, mac)  # another feed
    assert not verify_capability(key, HANDSHAKE, True, mac[:-1] + bytes([mac[-1] ^ 1]))
    assert not verify_capability(key, HANDSHAKE, True, mac[:16])


def test_capability_rejects_bad_keys() -> None:
    with pytest.raises(InvalidInput):
        capability_key(bytes(31))
    with pytest.raises(InvalidInput):
        capability_mac(capability_key(FEED_KEY), b"", True)


# -- range sets --------------------------------------------------------------------------

ops = st.lists(
    st.tuples(st.sampled_from(["add", "remove"]), st.integers(0, 60), st.integers(0, 20)),
    max_size=30,
)


def _model(operations: list[tuple[str, int, int]]) -> tuple[RangeSet, set[int]]:
    ranges, model = RangeSet(), set[int]()
    for op, start, size in operations:
        if op == "add":
            ranges.add(start, start + size)
            model |= set(range(start, start + size))
        else:
            ranges.remove(start, start + size)
            model -= set(range(start, start + size))
    return ranges, model


def _members(ranges: RangeSet) -> set[int]:
    return {i for s, e in ranges for i in range(s, e)}


def _canonical(ranges: RangeSet) -> bool:
    runs = list(ranges)
    return all(s < e for s, e in runs) and all(a[1] < b[0] for a, b in itertools.pairwise(runs))


@given(ops)
def test_range_set_matches_a_set_of_ints(operations: list[tuple[str, int, int]]) -> None:
    ranges, model = _model(operations)
    assert _members(ranges) == model
    assert _canonical(ranges)
    assert ranges.count() == len(model)
    for i in range(-1, 85):
        assert (i in ranges) == (i in model)


@given(ops, ops, st.integers(0, 80), st.integers(0, 30))
def test_range_set_algebra(
    a_ops: list[tuple[str, int, int]], b_ops: list[tuple[str, int, int]], s: int, n: int
) -> None:
    a, a_model = _model(a_ops)
    b, b_model = _model(b_ops)
    for result, expected in [
        (a.intersection(b), a_model & b_model),
        (a.difference(b), a_model - b_model),
        (a.union(b), a_model | b_model),
        (a.clip(s, s + n), {i for i in a_model if s <= i < s + n}),
    ]:
        assert _members(result) == expected
        assert _canonical(result)
    assert a.covers(s, s + n) == (set(range(s, s + n)) <= a_model)
    assert a == RangeSet(list(a)) == RangeSet(reversed(list(a)))
    # In place, from unsorted, overlapping lists (as the replicator feeds them).
    raw = [(start, start + size) for op, start, size in b_ops]
    grown, shrunk = a.copy(), a.copy()
    grown.update(reversed(raw))
    shrunk.difference_update(reversed(raw))
    raw_model = {i for start, end in raw for i in range(start, end)}
    assert _members(grown) == a_model | raw_model
    assert _canonical(grown)
    assert _members(shrunk) == a_model - raw_model
    assert _canonical(shrunk)


def test_range_set_open_end() -> None:
    ranges = RangeSet([(5, OPEN_END)])
    assert 2**62 in ranges
    assert 4 not in ranges
    ranges.remove(10, 20)
    assert list(ranges) == [(5, 10), (20, OPEN_END)]
    assert ranges.last_end() == OPEN_END
    with pytest.raises(InvalidInput):
        ranges.add(3, 2)
