"""Streaming uploads: a request body, or the file part of a ``multipart/form-data`` body, written
to a temp file in the data dir as it arrives, never held whole in memory.

The routes then hand the temp file's path to the control method that imports
a file (``files.add``, ``blob.add``, ``feed.append``), exactly as the CLI
hands it a path on disk, and delete it afterwards. The temp files live in the
data dir (``http-uploads/``), not ``/tmp``: ``/tmp`` is often a RAM disk, and
the data dir is on the filesystem the blob store copies into.

python-multipart parses the form incrementally; its callbacks only collect
what arrived, and each chunk's file bytes go to disk on a worker thread.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from hyphal.errors import DecodeError, InvalidInput
from hyphal.http.framework import fastapi, python_multipart

UPLOAD_DIR = "http-uploads"
FILE_FIELD = "file"
MAX_FIELD = 4096
"""Bytes of a form field that is not the file (``name``, ``private``): small by nature."""
MAX_PARTS = 16


def upload_dir(data_dir: Path) -> Path:
    return data_dir / UPLOAD_DIR


def clear_uploads(data_dir: Path) -> None:
    """Temp files a previous run left (it stopped mid-upload)."""
    shutil.rmtree(upload_dir(data_dir), ignore_errors=True)


@contextlib.contextmanager
def temp_file(data_dir: Path) -> Iterator[tuple[Path, BinaryIO]]:
    where = upload_dir(data_dir)
    where.mkdir(mode=0o700, exist_ok=True)
    path = where / f"upload-{secrets.token_hex(8)}"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            yield path, out
    finally:
        path.unlink(missing_ok=True)


@contextlib.asynccontextmanager
async def body_file(request: fastapi.Request, data_dir: Path) -> AsyncIterator[Path]:
    """The raw request body in a temp file, deleted on leaving."""
    with temp_file(data_dir) as (path, out):
        async for chunk in request.stream():
            if chunk:
                await anyio.to_thread.run_sync(out.write, chunk)
        out.flush()
        yield path


@dataclass
class Form:
    path: Path
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Part:
    headers: dict[bytes, bytes] = field(default_factory=dict)
    name: str = ""
    is_file: bool = False
    text: bytearray = field(default_factory=bytearray)


class _FormParser:
    """python-multipart's callbacks: headers per part, the file part's bytes queued for disk."""

    def __init__(self, boundary: bytes) -> None:
        self.pending: list[bytes] = []
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_parts = 0
        self.parts = 0
        self._part = _Part()
        self._field = bytearray()
        self._value = bytearray()
        self.parser = python_multipart.MultipartParser(
            boundary,
            {
                "on_part_begin": self._begin,
                "on_header_field": lambda data, start, end: self._field.extend(data[start:end]),
                "on_header_value": lambda data, start, end: self._value.extend(data[start:end]),
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done,
                "on_part_data": self._data,
                "on_part_end": self._end,
            },
        )

    def _begin(self) -> None:
        self.parts += 1
        if self.parts > MAX_PARTS:
            raise InvalidInput(f"a form has at most {MAX_PARTS} parts")
        self._part = _Part()

    def _header_end(self) -> None:
        self._part.headers[bytes(self._field).lower()] = bytes(self._value)
        self._field.clear()
        self._value.clear()

    def _headers_done(self) -> None:
        part = self._part
        _, options = python_multipart.multipart.parse_options_header(part.headers.get(b"content-disposition"))
        part.name = options.get(b"name", b"").decode("utf-8", "replace")
        part.is_file = part.name == FILE_FIELD
        if part.is_file:
            self.file_parts += 1
            if self.file_parts > 1:
                raise InvalidInput(f"a form carries one {FILE_FIELD!r} part")
            filename = options.get(b"filename")
            self.filename = filename.decode("utf-8", "replace") if filename else None

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self._part
        if part.is_file:
            self.pending.append(bytes(data[start:end]))
            return
        part.text.extend(data[start:end])
        if len(part.text) > MAX_FIELD:
            raise InvalidInput(f"form field {part.name[:32]!r} is over {MAX_FIELD} bytes")

    def _end(self) -> None:
        part = self._part
        if not part.is_file:
            try:
                self.fields[part.name] = part.text.decode("utf-8")
            except UnicodeDecodeError:
                raise DecodeError(f"form field {part.name[:32]!r} is not UTF-8") from None


def _boundary(request: fastapi.Request) -> bytes:
    kind, options = python_multipart.multipart.parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise InvalidInput(f"send the file as multipart/form-data, in a part named {FILE_FIELD!r}")
    return boundary


@contextlib.asynccontextmanager
async def form_file(request: fastapi.Request, data_dir: Path) -> AsyncIterator[Form]:
    """The multipart body's ``file`` part in a temp file (deleted on leaving), and its other fields."""
    form = _FormParser(_boundary(request))
    with temp_file(data_dir) as (path, out):

        def write_pending() -> None:
            for piece in form.pending:
                out.write(piece)
            form.pending.clear()

        try:
            async for chunk in request.stream():
                form.parser.write(chunk)
                if form.pending:
                    await anyio.to_thread.run_sync(write_pending)
            form.parser.finalize()
        except python_multipart.exceptions.FormParserError as exc:
            raise DecodeError(f"the multipart body does not parse: {exc}") from None
        write_pending()
        out.flush()
        if form.file_parts == 0:
            raise InvalidInput(f"the form has no part named {FILE_FIELD!r}")
        yield Form(path, form.filename, form.fields)


__all__ = ["Form", "body_file", "clear_uploads", "form_file", "upload_dir"]
