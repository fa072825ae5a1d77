"""The byte stream of a connection (net/frames.py): sealed frames, handshake messages, varints.

Mode byte, then:

0. a stream of sealed frames, in the pieces it arrived in, opened with a fixed
   transport key (the seeds are frames sealed with it), then end of stream;
1. the handshake message stream (``u16le length ‖ message``), in pieces;
2. LEB128 varints one after another (each must re-encode to its bytes).

Refusal: ``DecodeError``, ``ProtocolError`` or ``DecryptionError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import mode
from fuzz.harness import Target, join, split
from hyphal.errors import DecodeError, DecryptionError, ProtocolError
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

KEY = bytes(range(100, 132))


def run(data: bytes) -> None:
    kind, data = mode(data, 3)
    if kind == 0:
        decoder = FrameDecoder(CipherState(KEY), max_frame=MIN_MAX_FRAME)
        for piece in split(data, limit=256):
            decoder.feed(piece)
        decoder.eof()
    elif kind == 1:
        messages = HandshakeMessageDecoder()
        for piece in split(data, limit=256):
            messages.feed(piece)
            while messages.next_message() is not None:
                pass
        messages.take_rest()
    else:
        pos = 0
        while pos < len(data):
            value, after = decode_varint(data, pos)
            assert encode_varint(value) == data[pos:after], "a varint decoded from a non-canonical encoding"
            pos = after


def seeds() -> Iterator[bytes]:
    encoder = FrameEncoder(CipherState(KEY), max_frame=MIN_MAX_FRAME)
    frames = [encoder.encode(p) for p in (b"\x06\x07", b"first frame", bytes(300), b"\x08\x03bye")]
    stream = b"".join(frames)
    yield b"\x00" + join([stream])
    yield b"\x00" + join(frames)
    yield b"\x00" + join([stream[i : i + 7] for i in range(0, len(stream), 7)])
    handshake = [encode_handshake_message(m) for m in (bytes(32), bytes(range(96)), b"")]
    yield b"\x01" + join(handshake)
    yield b"\x01" + join([b"".join(handshake)[:50], b"".join(handshake)[50:] + frames[0]])
    yield b"\x02" + b"".join(encode_varint(v) for v in (0, 1, 127, 128, 300, 2**32, 2**64 - 1))


TARGET = Target("frames", run, (DecodeError, ProtocolError, DecryptionError), seeds)
