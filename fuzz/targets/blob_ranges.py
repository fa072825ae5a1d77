"""Verified blob ranges (the Rust core's ``RangeDecoder``, through ``_core.blob``), as read by a downloader.

The blob is real: three 16 KiB chunk groups (the last one short). Mode byte, then:

0. raw bytes as the response for a group range the first byte picks, fed in pieces;
1. the *real* response for that range, altered by a recipe (flip bytes, cut it short) and fed
   in pieces the recipe sizes: the fuzzer cannot make a valid response from nothing, but it
   can break a real one everywhere.

Whatever the decoder returns as verified must be the blob's own bytes and outboard nodes.
Refusal: ``DecodeError`` or ``ProofError``.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

from fuzz.fixtures import mode
from fuzz.harness import Target, join, split
from hyphal import _core
from hyphal.errors import DecodeError, ProofError

GROUP = _core.blob.GROUP_SIZE
SIZE = 2 * GROUP + 700
BLOB = bytes(i * 7 % 251 for i in range(SIZE))
ROOT, OUTBOARD = _core.blob.outboard(BLOB)
RANGES = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
_FLIP = struct.Struct("<HB")


def _response(start: int, end: int) -> bytes:
    return _core.blob.encode_range(ROOT, SIZE, OUTBOARD, BLOB[start * GROUP : end * GROUP], start, end)


RESPONSES = {r: _response(*r) for r in RANGES}


def _feed(start: int, end: int, pieces: list[bytes]) -> None:
    decoder = _core.blob.RangeDecoder(ROOT, SIZE, start, end)
    for piece in pieces:
        nodes, groups = decoder.feed(piece)
        for offset, data in nodes:
            assert OUTBOARD[offset : offset + len(data)] == data, "a node that is not the blob's verified"
        for first, data in groups:
            assert BLOB[first * GROUP : first * GROUP + len(data)] == data, "bytes not the blob's verified"
        if decoder.done:
            break


def run(data: bytes) -> None:
    kind, data = mode(data, 2)
    if not data:
        return
    start, end = RANGES[data[0] % len(RANGES)]
    if kind == 0:
        _feed(start, end, split(data[1:], limit=256))
        return
    # The recipe: u8 flip count, that many (u16le position, u8 xor), u16le cut (0: none), then piece sizes.
    response = bytearray(RESPONSES[start, end])
    flips, pos = (data[1] if len(data) > 1 else 0), 2
    for _ in range(flips):
        if pos + _FLIP.size > len(data):
            break
        at, xor = _FLIP.unpack_from(data, pos)
        pos += _FLIP.size
        response[at % len(response)] ^= xor
    if pos + 2 <= len(data):
        cut = int.from_bytes(data[pos : pos + 2], "little")
        pos += 2
        if cut:
            del response[cut % len(response) :]
    pieces, at = [], 0
    for size_at in range(pos, len(data) - 1, 2):
        size = int.from_bytes(data[size_at : size_at + 2], "little") % (2 * GROUP) + 1
        pieces.append(bytes(response[at : at + size]))
        at += size
        if at >= len(response):
            break
    pieces.append(bytes(response[at:]))
    _feed(start, end, pieces)


def seeds() -> Iterator[bytes]:
    yield b"\x00\x05" + join([RESPONSES[2, 3]])
    yield b"\x00\x05" + join([RESPONSES[2, 3][:100], RESPONSES[2, 3][100:]])
    for index in range(len(RANGES)):
        yield bytes((1, index, 0))  # the whole response, unaltered, in one piece
        yield bytes((1, index, 1)) + _FLIP.pack(70, 1) + b"\x00\x00" + struct.pack("<3H", 64, 1000, 17)
        yield bytes((1, index, 0)) + struct.pack("<H", 200)


TARGET = Target("blob_ranges", run, (DecodeError, ProofError), seeds)
