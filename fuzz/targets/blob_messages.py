"""Blob transfer messages (blobs/messages.py): requests as a provider reads them, replies as a downloader.

Mode byte, then one message. Requests, HAVE and DATA must encode back to
their bytes. Refusal: ``DecodeError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import mode
from fuzz.harness import Target
from hyphal.blobs.messages import (
    Cancel,
    Data,
    ErrorCode,
    Get,
    Has,
    Have,
    HaveState,
    data_header,
    decode_reply,
    decode_request,
    encode_cancel,
    encode_error,
    encode_get,
    encode_has,
    encode_have,
)
from hyphal.errors import DecodeError

HASH = bytes(range(32))


def run(data: bytes) -> None:
    kind, data = mode(data, 2)
    if kind == 0:
        request = decode_request(data)
        if isinstance(request, Has):
            again = encode_has(request.id, request.hash)
        elif isinstance(request, Get):
            again = encode_get(request.id, request.hash, request.size, request.start, request.end)
        else:
            assert isinstance(request, Cancel)
            again = encode_cancel(request.id)
        assert again == data, "a blob request decoded from a non-canonical encoding"
    else:
        reply = decode_reply(data)
        if isinstance(reply, Have):
            again = encode_have(reply.id, reply.state, reply.size, reply.bitfield)
            assert again == data, "a HAVE decoded from a non-canonical encoding"
        elif isinstance(reply, Data):
            assert data_header(reply.id, reply.last) + bytes(reply.payload) == data, "DATA is not canonical"


def seeds() -> Iterator[bytes]:
    yield b"\x00" + encode_has(1, HASH)
    yield b"\x00" + encode_get(2, HASH, 40000, 0, 3)
    yield b"\x00" + encode_cancel(2)
    yield b"\x01" + encode_have(1, HaveState.COMPLETE, 40000)
    yield b"\x01" + encode_have(1, HaveState.PARTIAL, 40000, b"\x05")
    yield b"\x01" + encode_have(1, HaveState.ABSENT, 0)
    yield b"\x01" + data_header(2, False) + bytes(64)
    yield b"\x01" + data_header(2, True) + b"the last piece"
    yield b"\x01" + encode_error(2, ErrorCode.NOT_AVAILABLE, "no such groups here")


TARGET = Target("blob_messages", run, (DecodeError,), seeds)
