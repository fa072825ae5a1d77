"""Sans-I/O framing: varints, handshake messages and sealed transport frames."""

from __future__ import annotations

import os
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hyphal import _core
from hyphal.errors import DecodeError, DecryptionError, HyphalError, InvalidInput, ProtocolError
from hyphal.net.frames import (
    MIN_MAX_FRAME,
    FrameDecoder,
    FrameEncoder,
    HandshakeMessageDecoder,
    decode_varint,
    encode_handshake_message,
    encode_varint,
)
from hyphal.net.noise import CipherState

KEY = bytes(range(32))


def _pair(max_frame: int = 1 << 20) -> tuple[FrameEncoder, FrameDecoder]:
    return FrameEncoder(CipherState(KEY), max_frame), FrameDecoder(CipherState(KEY), max_frame)


# -- varints ------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_varint_round_trip(value: int) -> None:
    encoded = encode_varint(value)
    assert decode_varint(b"\xaa" + encoded + b"\xbb", 1) == (value, 1 + len(encoded))
    assert len(encoded) == max(1, (value.bit_length() + 6) // 7)


def test_varint_known_encodings() -> None:
    assert encode_varint(0) == b"\x00"
    assert encode_varint(127) == b"\x7f"
    assert encode_varint(128) == b"\x80\x01"
    assert encode_varint(300) == b"\xac\x02"
    assert encode_varint(2**64 - 1) == b"\xff" * 9 + b"\x01"


@pytest.mark.parametrize(
    "data",
    [b"", b"\x80", b"\x80\x00", b"\xff\x80\x00", b"\xff" * 9 + b"\x02", b"\xff" * 10 + b"\x01"],
    ids=["empty", "truncated", "overlong-zero", "overlong", "2^64", "11-bytes"],
)
def test_varint_rejects_non_canonical_and_out_of_range(data: bytes) -> None:
    with pytest.raises(DecodeError):
        decode_varint(data, 0)


def test_varint_encoder_rejects_out_of_range() -> None:
    for value in (-1, 2**64):
        with pytest.raises(InvalidInput):
            encode_varint(value)


@given(st.binary(max_size=16), st.integers(min_value=0, max_value=16))
def test_varint_decoder_raises_only_decode_errors(data: bytes, pos: int) -> None:
    try:
        value, end = decode_varint(data, pos)
    except DecodeError:
        return
    assert encode_varint(value) == data[pos:end]


# -- handshake messages -------------------------------------------------------------


def test_handshake_messages_split_across_feeds_and_keep_the_rest() -> None:
    stream = encode_handshake_message(b"one") + encode_handshake_message(b"") + b"frames follow"
    decoder = HandshakeMessageDecoder()
    got = []
    for byte in stream:
        decoder.feed(bytes((byte,)))
        while (message := decoder.next_message()) is not None:
            got.append(message)
    assert got == [b"one", b""]
    assert decoder.take_rest() == b"frames follow"


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_handshake_message_decoder_on_arbitrary_bytes(chunks: list[bytes]) -> None:
    decoder = HandshakeMessageDecoder()
    taken = 0
    for chunk in chunks:
        decoder.feed(chunk)
        while (message := decoder.next_message()) is not None:
            taken += 2 + len(message)
    # Whatever arrives, messages plus the rest account for every byte, nothing more.
    assert taken + len(decoder.take_rest()) == sum(map(len, chunks))


def test_handshake_message_limit() -> None:
    assert encode_handshake_message(bytes(65535))[:2] == b"\xff\xff"
    with pytest.raises(InvalidInput):
        encode_handshake_message(bytes(65536))


# -- transport frames ----------------------------------------------------------------


def test_frame_layout_is_length_then_chacha20poly1305_with_counter_nonce() -> None:
    encoder, _ = _pair()
    encoder.encode(b"first")
    frame = encoder.encode(b"second")
    nonce = bytes(4) + (1).to_bytes(8, "little")
    assert frame == struct.pack("<I", 6 + 16) + _core.chacha20poly1305_encrypt(KEY, nonce, b"second", b"")
    assert encoder.nonce == 2


@given(
    st.lists(st.binary(max_size=3000), min_size=1, max_size=8),
    st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=20),
)
def test_frames_round_trip_under_any_chunking(plaintexts: list[bytes], cuts: list[int]) -> None:
    encoder, decoder = _pair()
    stream = b"".join(encoder.encode(p) for p in plaintexts)
    got: list[bytes] = []
    pos = 0
    for cut in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        got += decoder.feed(stream[pos : pos + cut])
        pos += cut
        if pos >= len(stream):
            break
    got += decoder.feed(stream[pos:])
    assert got == plaintexts
    assert decoder.buffered == 0
    decoder.eof()


@settings(max_examples=50, deadline=None)
@given(st.lists(st.binary(max_size=3000), min_size=1, max_size=6), st.integers(min_value=1, max_value=700))
def test_a_reused_read_buffer_cannot_corrupt_held_frames(plaintexts: list[bytes], chunk: int) -> None:
    # A reader that recv_into()s one bytearray hands us the same buffer every time;
    # whatever we hold of an unfinished frame must survive it being overwritten.
    encoder, decoder = _pair()
    stream = b"".join(encoder.encode(p) for p in plaintexts)
    buffer = bytearray(chunk)
    got: list[bytes] = []
    for pos in range(0, len(stream), chunk):
        piece = stream[pos : pos + chunk]
        buffer[: len(piece)] = piece
        got += decoder.feed(memoryview(buffer)[: len(piece)])
        buffer[:] = bytes(chunk)  # the next recv_into scribbles over it
    assert got == plaintexts
    decoder.eof()


def test_a_trickled_frame_is_held_compactly_and_a_chunked_one_uncopied() -> None:
    encoder, decoder = _pair(max_frame=1 << 20)
    frame = encoder.encode(os.urandom(100_000))
    for i in range(len(frame) - 1):  # a peer sending one byte per segment
        assert decoder.feed(frame[i : i + 1]) == []
    assert len(decoder._parts) == 1  # one buffer, not a view object per byte
    assert len(decoder.feed(frame[-1:])[0]) == 100_000
    big = encoder.encode(os.urandom(1_000_000))
    chunks = [big[i : i + 250_000] for i in range(0, len(big), 250_000)]
    for chunk in chunks[:-1]:
        assert decoder.feed(chunk) == []
    assert all(type(p) is memoryview for p in decoder._parts)  # views of the reads, no copies
    assert len(decoder.feed(chunks[-1])[0]) == 1_000_000


def test_many_frames_in_one_feed_and_a_partial_tail() -> None:
    encoder, decoder = _pair()
    frames = [encoder.encode(os.urandom(n)) for n in (0, 1, 100, 70000)]
    stream = b"".join(frames)
    assert [len(p) for p in decoder.feed(stream[:-10])] == [0, 1, 100]
    assert decoder.buffered == len(frames[-1]) - 10
    assert [len(p) for p in decoder.feed(stream[-10:])] == [70000]


def test_replayed_frame_fails() -> None:
    encoder, decoder = _pair()
    first = encoder.encode(b"pay alice 10")
    assert decoder.feed(first) == [b"pay alice 10"]
    with pytest.raises(DecryptionError):
        decoder.feed(first)


def test_reordered_and_dropped_frames_fail() -> None:
    encoder, decoder = _pair()
    first, second = encoder.encode(b"a"), encoder.encode(b"b")
    with pytest.raises(DecryptionError):
        decoder.feed(second + first)
    encoder, decoder = _pair()
    encoder.encode(b"dropped")
    with pytest.raises(DecryptionError):
        decoder.feed(encoder.encode(b"after the gap"))


def test_tampered_and_spliced_frames_fail() -> None:
    for position in (4, 10, -1):
        encoder, decoder = _pair()
        frame = bytearray(encoder.encode(b"some plaintext"))
        frame[position] ^= 0x40
        with pytest.raises(DecryptionError):
            decoder.feed(bytes(frame))
    # A frame from another session (other key) does not open either.
    other = FrameEncoder(CipherState(bytes(32)))
    _, decoder = _pair()
    with pytest.raises(DecryptionError):
        decoder.feed(other.encode(b"from elsewhere"))


def test_oversize_length_is_rejected_before_buffering() -> None:
    encoder, decoder = _pair(max_frame=MIN_MAX_FRAME)
    decoder.feed(encoder.encode(bytes(MIN_MAX_FRAME)))  # exactly the limit is fine
    with pytest.raises(ProtocolError):
        decoder.feed(struct.pack("<I", MIN_MAX_FRAME + 17))  # only the prefix has arrived
    # The same through the buffered path (prefix split over two feeds).
    _, decoder = _pair(max_frame=MIN_MAX_FRAME)
    decoder.feed(b"\xff\xff")
    with pytest.raises(ProtocolError):
        decoder.feed(b"\xff\x7f")
    assert decoder.buffered == 4  # nothing beyond the prefix was taken in


def test_encoder_refuses_oversize_frames() -> None:
    encoder, _ = _pair(max_frame=MIN_MAX_FRAME)
    with pytest.raises(InvalidInput):
        encoder.encode(bytes(MIN_MAX_FRAME + 1))
    with pytest.raises(InvalidInput):
        FrameEncoder(CipherState(KEY), MIN_MAX_FRAME - 1)


def test_frame_too_short_for_a_tag() -> None:
    _, decoder = _pair()
    with pytest.raises(DecodeError):
        decoder.feed(struct.pack("<I", 15) + bytes(15))


def test_truncated_stream_is_reported_at_eof() -> None:
    encoder, decoder = _pair()
    frame = encoder.encode(b"cut short")
    decoder.feed(frame[:-1])
    with pytest.raises(DecodeError):
        decoder.eof()
    _, decoder = _pair()
    decoder.feed(frame[:3])  # inside the length prefix
    with pytest.raises(DecodeError):
        decoder.eof()


def test_failed_decoder_stays_failed() -> None:
    encoder, decoder = _pair()
    good = encoder.encode(b"ok")
    with pytest.raises(DecryptionError):
        decoder.feed(b"\x20\x00\x00\x00" + bytes(32))
    with pytest.raises(ProtocolError):
        decoder.feed(good)


def test_sending_stops_before_the_reserved_nonce() -> None:
    encoder = FrameEncoder(CipherState(KEY, nonce=2**64 - 2))
    decoder = FrameDecoder(CipherState(KEY, nonce=2**64 - 2))
    assert decoder.feed(encoder.encode(b"last")) == [b"last"]
    with pytest.raises(ProtocolError):
        encoder.encode(b"past the end")


@given(st.lists(st.binary(max_size=64), max_size=6))
def test_frame_decoder_on_garbage_raises_only_hyphal_errors(chunks: list[bytes]) -> None:
    _, decoder = _pair(max_frame=MIN_MAX_FRAME)
    try:
        for chunk in chunks:
            assert decoder.feed(chunk) == []  # garbage never opens
        decoder.eof()
    except HyphalError:
        pass


@given(st.binary(min_size=1, max_size=200), st.integers(min_value=0, max_value=199))
def test_frame_decoder_on_corrupted_stream_raises_only_hyphal_errors(garbage: bytes, at: int) -> None:
    encoder, decoder = _pair()
    stream = bytearray(encoder.encode(b"a" * 50) + encoder.encode(b"b" * 50))
    at %= len(stream)
    stream[at : at + len(garbage)] = garbage
    try:
        got = decoder.feed(bytes(stream))
        decoder.eof()
    except HyphalError:
        return
    assert got == [b"a" * 50, b"b" * 50]  # only if the "garbage" changed nothing
