"""Streaming downloads that honour HTTP ``Range`` (RFC 9110 §14): a group's files and blobs.

The control protocol has no byte stream (``files.get`` and ``blob.get``
export to a path on the node's machine), so this is the HTTP API's own data
path: it fetches as those methods do (:meth:`Group.fetch`,
:meth:`Node.fetch_blob`), then reads the verified bytes straight from the
blob store, a window at a time on a worker thread, so a file of any size
streams in constant memory and a ``Range`` costs only the bytes it names.
Private files are decrypted segment by segment (:func:`read_private_range`).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from urllib.parse import quote

import anyio
import anyio.to_thread

from hyphal.blobs.private import PrivateBlob, read_private_range
from hyphal.control.methods.blobs import BLOB_TAG_PREFIX, FETCH_TIMEOUT
from hyphal.groups.events import FileInfo
from hyphal.groups.group import Group
from hyphal.http import problems
from hyphal.http.framework import responses
from hyphal.node import Node

WINDOW = 1 << 20
"""Bytes read (and verified) per step: large enough to keep a disk busy, small enough to hold."""
_RANGE = re.compile(r"bytes=(\d*)-(\d*)")

Reader = Callable[[int, int], bytes]


class RangeNotSatisfiable(Exception):
    """The ``Range`` names no byte of the content (answered 416 with ``Content-Range: bytes */size``)."""


@dataclass(frozen=True, slots=True)
class Content:
    size: int
    etag: str
    filename: str
    read: Reader
    """``read(offset, length)``: verified bytes."""


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """``[start, end)`` for a single ``bytes=`` range; None for none (or one we may ignore:
    several ranges, or another unit, which RFC 9110 lets a server answer with the whole)."""
    if header is None:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0:
            raise RangeNotSatisfiable
        return max(0, size - suffix), size
    start = int(first)
    end = size if not last else min(size, int(last) + 1)
    if start >= size or (last and int(last) < start):
        raise RangeNotSatisfiable
    return start, end


def response(content: Content, range_header: str | None) -> responses.Response:
    headers = {
        "accept-ranges": "bytes",
        "etag": f'"{content.etag}"',
        "content-disposition": f"attachment; filename*=UTF-8''{quote(content.filename, safe='')}",
    }
    try:
        wanted = parse_range(range_header, content.size)
    except RangeNotSatisfiable:
        problem = problems.HTTP_PROBLEMS["range_not_satisfiable"]
        shown = (range_header or "")[:64]
        detail = f"the range {shown!r} is outside the {content.size} bytes"
        return responses.JSONResponse(
            problems.body(problem, detail),
            status_code=416,
            media_type=problems.PROBLEM_TYPE,
            headers={"content-range": f"bytes */{content.size}"},
        )
    start, end = wanted if wanted is not None else (0, content.size)
    headers["content-length"] = str(end - start)
    status = 200
    if wanted is not None:
        status = 206
        headers["content-range"] = f"bytes {start}-{end - 1}/{content.size}"
    return responses.StreamingResponse(
        _pieces(content.read, start, end),
        status_code=status,
        headers=headers,
        media_type="application/octet-stream",
    )


async def _pieces(read: Reader, start: int, end: int) -> AsyncIterator[bytes]:
    offset = start
    while offset < end:
        piece = await anyio.to_thread.run_sync(read, offset, min(WINDOW, end - offset))
        if not piece:
            raise anyio.BrokenResourceError("the content ended early")
        yield piece
        offset += len(piece)


async def group_file(node: Node, group: Group, name: str) -> Content:
    """File ``name`` of ``group``, fetched from its members first if this node lacks it."""
    file = group.lookup(name)
    await group.fetch(file)
    return Content(file.size, file.blob_hash.hex(), name.rsplit("/", 1)[-1], _file_reader(node, group, file))


def _file_reader(node: Node, group: Group, file: FileInfo) -> Reader:
    blobs = node.blobs
    if file.entry.key is None:
        return lambda offset, length: blobs.read(file.blob_hash, offset, length)
    key, plaintext_hash = group.keys.unwrap_private(file.entry.key, file.blob_hash)
    ref = PrivateBlob(file.blob_hash, key, file.size, plaintext_hash)
    return lambda offset, length: read_private_range(blobs, ref, offset, length)


async def blob(node: Node, blob_hash: bytes) -> Content:
    """The blob, fetched from connected peers first if the store lacks it (as ``blob.get`` does)."""
    await node.fetch_blob(blob_hash, tag=BLOB_TAG_PREFIX + blob_hash.hex(), timeout=FETCH_TIMEOUT)
    info = node.blobs.info(blob_hash)
    size = 0 if info is None else info.size
    return Content(size, blob_hash.hex(), blob_hash.hex(), lambda o, n: node.blobs.read(blob_hash, o, n))


__all__ = ["Content", "RangeNotSatisfiable", "blob", "group_file", "parse_range", "response"]
