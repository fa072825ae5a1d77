"""The blob store's files: each blob's data and outboard, imports in progress, verified range reads.

Under the store's directory (docs/PROTOCOL.md §12.2)::

    data/<hex>.data       the blob's bytes (a partial blob's file is full size, holes unread)
    data/<hex>.obao       its outboard: in-order parent nodes, 64 bytes each
    tmp/                  imports in progress (emptied on open)

Nothing here knows which blobs the store holds or what is pinned: that is
the catalog's (:mod:`hyphal.blobs.catalog`), and the store
(:mod:`hyphal.blobs.blob_store`) says which groups of a file may be read. Every
byte read back is verified against the blob's hash before use (the Rust walk
checks each group and each node on its path up to the root), so a corrupt
disk yields :class:`~hyphal.errors.ProofError`, never bad data.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import mmap
import os
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from io import FileIO
from pathlib import Path
from typing import TYPE_CHECKING, Self

from typing_extensions import Buffer

from hyphal import _core
from hyphal.blobs.bitfield import GroupBits
from hyphal.blobs.catalog import BlobFormat
from hyphal.errors import InvalidInput, NotAvailable
from hyphal.files import fsync_dir

if TYPE_CHECKING:
    from hyphal.blobs.blob_store import TempTag

log = logging.getLogger("hyphal.blobs")

GROUP_SIZE: int = _core.BLOB_GROUP_SIZE
NODE_SIZE = 64
IMPORT_CHUNK = 8 * 2**20
"""Bytes read, hashed and written per step of an import."""
COPY_STEP = 64 * 2**20
"""Bytes an import copies, then hashes, at a time."""
SYNC_EVERY = 256 * 2**20
"""Bytes an import copies between fdatasyncs (so the disk works alongside the copy)."""
READ_WINDOW = 4 * 2**20
"""Bytes verified per step of an export."""


def group_count(size: int) -> int:
    return _core.blob_group_count(size)


def _pread_exact(fd: int, length: int, offset: int) -> bytes:
    data = os.pread(fd, length, offset)
    while len(data) < length:
        more = os.pread(fd, length - len(data), offset + len(data))
        if not more:
            raise NotAvailable(f"blob file ends {length - len(data)} bytes early")
        data += more
    return data


def _write_runs(fd: int, runs: Sequence[tuple[int, Buffer]], base: int = 0) -> None:
    for offset, data in runs:
        view = memoryview(data)
        while view:
            n = os.pwrite(fd, view, base + offset)
            if n <= 0:
                raise OSError("pwrite wrote nothing")
            offset += n
            view = view[n:]


class OpenBlob:
    """The open data and outboard files of one blob, and a read map of the outboard.

    ``present`` is what may be read: ``None`` for a whole blob, else the groups
    held. Reads outside it raise :class:`~hyphal.errors.NotAvailable`.
    """

    def __init__(
        self,
        hash_: bytes,
        data_path: Path,
        outboard_path: Path,
        size: int,
        *,
        writable: bool,
        present: GroupBits | None = None,
    ) -> None:
        flags = os.O_RDWR if writable else os.O_RDONLY
        self.hash = hash_
        self.size = size
        self.present = present
        self.data = os.open(data_path, flags)
        try:
            self.outboard = os.open(outboard_path, flags)
        except OSError:
            os.close(self.data)
            raise
        ob_size = _core.blob_outboard_size(size)
        self.map: mmap.mmap | bytes = (
            mmap.mmap(self.outboard, ob_size, prot=mmap.PROT_READ) if ob_size else b""
        )

    def close(self) -> None:
        if isinstance(self.map, mmap.mmap):
            self.map.close()
        os.close(self.data)
        os.close(self.outboard)

    # -- writing (a partial blob's verified groups) ------------------------------------------

    def write_nodes(self, nodes: Sequence[tuple[int, Buffer]]) -> None:
        _write_runs(self.outboard, nodes)

    def write_groups(self, first: int, data: Buffer) -> None:
        _write_runs(self.data, [(first * GROUP_SIZE, data)])

    def sync(self) -> None:
        """fdatasync the data, then the outboard."""
        os.fdatasync(self.data)
        os.fdatasync(self.outboard)

    # -- verified reads ----------------------------------------------------------------------------

    def read_groups(self, start: int, end: int) -> bytes:
        lo, hi = min(start * GROUP_SIZE, self.size), min(end * GROUP_SIZE, self.size)
        return _pread_exact(self.data, hi - lo, lo)

    def _require(self, start: int, end: int) -> None:
        if self.present is not None and any(True for _ in self.present.runs(False, start, end)):
            raise NotAvailable(f"blob {self.hash.hex()} lacks some of groups [{start}, {end})")

    def encode_range(self, start: int, end: int) -> bytes:
        """The verified wire response for groups ``[start, end)``."""
        if not 0 <= start < end <= group_count(self.size):
            raise InvalidInput(f"group range [{start}, {end}) is outside the blob")
        self._require(start, end)
        data = self.read_groups(start, end)
        return _core.blob_encode_range(self.hash, self.size, self.map, data, start, end)

    def read(self, offset: int, length: int | None) -> bytes:
        """Bytes ``[offset, offset + length)`` (to the end when ``length`` is None), verified."""
        size = self.size
        end_byte = size if length is None else min(size, offset + length)
        if offset < 0 or (length is not None and length < 0) or offset > size:
            raise InvalidInput(f"byte range at {offset} is outside a blob of {size} bytes")
        start = min(offset // GROUP_SIZE, group_count(size) - 1)
        end = max(start + 1, -(-end_byte // GROUP_SIZE))
        self._require(start, end)
        data = self.read_groups(start, end)
        _core.blob_verify_range(self.hash, size, self.map, data, start, end)
        lo = start * GROUP_SIZE
        return data[offset - lo : end_byte - lo]

    def verified_pieces(self, window: int) -> Iterator[bytes]:
        """The whole blob, in verified pieces of about ``window`` bytes."""
        if self.present is not None:
            raise NotAvailable(f"blob {self.hash.hex()} is partial")
        n, step = group_count(self.size), max(1, window // GROUP_SIZE)
        for start in range(0, n, step):
            end = min(n, start + step)
            data = self.read_groups(start, end)
            _core.blob_verify_range(self.hash, self.size, self.map, data, start, end)
            yield data


class BlobFiles:
    """The ``data/`` and ``tmp/`` directories of a store; files are named by the blob's hash.

    ``sync=False`` skips the directory fsyncs (see :class:`~hyphal.blobs.blob_store.BlobStore`).
    """

    def __init__(self, path: Path, *, sync: bool) -> None:
        self.sync = sync
        self.data_dir = path / "data"
        self.tmp_dir = path / "tmp"
        for d in (path, self.data_dir, self.tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink()

    def paths(self, h: bytes) -> tuple[Path, Path]:
        name = h.hex()
        return self.data_dir / f"{name}.data", self.data_dir / f"{name}.obao"

    def exist(self, h: bytes) -> bool:
        """Whether both files of the blob are there."""
        return all(p.exists() for p in self.paths(h))

    def open_blob(self, h: bytes, size: int, *, writable: bool, present: GroupBits | None = None) -> OpenBlob:
        return OpenBlob(h, *self.paths(h), size, writable=writable, present=present)

    def create_sparse(self, h: bytes, size: int) -> None:
        """Make the full-size, empty data and outboard files of a blob to download (replacing any)."""
        for p, length in zip(self.paths(h), (size, _core.blob_outboard_size(size)), strict=True):
            with open(p, "wb") as f:
                f.truncate(length)
        if self.sync:
            fsync_dir(self.data_dir)

    def temp_paths(self) -> tuple[Path, Path]:
        """Fresh names in ``tmp/`` for the data and outboard of an import."""
        name = secrets.token_hex(8)
        return self.tmp_dir / f"{name}.data", self.tmp_dir / f"{name}.obao"

    def install(self, data_tmp: Path, ob_tmp: Path, h: bytes) -> None:
        """Rename an import's synced files into place, durably."""
        data_path, ob_path = self.paths(h)
        os.replace(data_tmp, data_path)
        os.replace(ob_tmp, ob_path)
        if self.sync:
            fsync_dir(self.data_dir)

    def delete(self, h: bytes) -> None:
        for p in self.paths(h):
            p.unlink(missing_ok=True)

    def hashes(self) -> set[bytes]:
        """The hashes with any file in ``data/``."""
        found: set[bytes] = set()
        for p in self.data_dir.iterdir():
            with contextlib.suppress(ValueError):
                found.add(bytes.fromhex(p.name.partition(".")[0]))
        return found


# -- imports --------------------------------------------------------------------------------------

Adopt = Callable[[Path, Path, bytes, int, BlobFormat], "TempTag"]
"""Moves a finished import (data, outboard, hash, size, format) into the store and pins it."""


def _copy_slowly(src: int, dst: int, src_offset: int, dst_offset: int) -> int:
    """One step of a user-space copy, for file pairs the kernel cannot copy between."""
    data = os.pread(src, COPY_STEP, src_offset)
    _write_runs(dst, [(dst_offset, data)])
    return len(data)


class _CopyProgress:
    """Bytes a copy thread has written so far, for the thread hashing behind it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._copied = 0
        self._finished = False
        self.stop = False
        self.error: BaseException | None = None

    def advance(self, copied: int) -> None:
        with self._cond:
            self._copied = copied
            self._cond.notify()

    def finish(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify()

    def wait_beyond(self, hashed: int) -> tuple[int, bool]:
        """Wait until a whole step past ``hashed`` is copied, or the copy ended."""
        with self._cond:
            while self._copied - hashed < COPY_STEP and not self._finished:
                self._cond.wait()
            return self._copied, self._finished


class Importer:
    """Hashes and writes a blob as it arrives; :meth:`finish` moves it into the store.

    Made by :meth:`BlobStore.importer <hyphal.blobs.blob_store.BlobStore.importer>`.
    """

    def __init__(self, files: BlobFiles, adopt: Adopt) -> None:
        self._sync = files.sync
        self._adopt = adopt
        self._data_path, self._ob_path = files.temp_paths()
        self._data = os.open(self._data_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        self._ob = os.open(self._ob_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._builder = _core.OutboardBuilder()
        self._done = False

    @property
    def length(self) -> int:
        return self._builder.length

    def write(self, data: Buffer) -> None:
        view = memoryview(data).cast("B")
        at = self._builder.length
        self._builder.update(view)
        _write_runs(self._data, [(at, view)])
        _write_runs(self._ob, self._builder.take_nodes())

    def copy_from(self, src: FileIO) -> None:
        """Append the whole of the file ``src``: the kernel copies it into the store
        (``copy_file_range``) on a helper thread, and this thread hashes each copied
        piece from the store's own file (a read-only map: no copy, and what is hashed
        is exactly what is stored), in Rust with the GIL released."""
        base = self.length
        if base % COPY_STEP:
            raise InvalidInput("copy_from must start at a multiple of COPY_STEP bytes")
        progress = _CopyProgress()
        thread = threading.Thread(
            target=self._copy, args=(src.fileno(), base, progress), name="hyphal-blob-import", daemon=True
        )
        thread.start()
        hashed = 0
        try:
            while True:
                copied, finished = progress.wait_beyond(hashed)
                # Whole steps only (map offsets stay page-aligned), but everything at the end.
                step = copied - hashed if finished else (copied - hashed) // COPY_STEP * COPY_STEP
                if step == 0:
                    if finished:
                        break
                    continue
                with (
                    mmap.mmap(self._data, step, prot=mmap.PROT_READ, offset=base + hashed) as mapped,
                    memoryview(mapped) as view,
                ):
                    self._builder.update(view)
                _write_runs(self._ob, self._builder.take_nodes())
                hashed += step
        finally:
            progress.stop = True
            thread.join()
        if progress.error is not None:
            raise progress.error

    def link_from(self, path: str | os.PathLike[str], src: FileIO) -> bool:
        """Make the file at ``path`` (open as ``src``) the blob's data by a hard link,
        then hash it; ``False`` (nothing done) when it cannot be linked here."""
        if self.length:
            raise InvalidInput("link_from must be the whole blob")
        os.close(self._data)
        self._data_path.unlink()
        try:
            os.link(path, self._data_path)
        except OSError as e:
            log.info("cannot link %s into the store (%s); copying it", path, e)
            self._data = os.open(self._data_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
            return False
        self._data = os.open(self._data_path, os.O_RDONLY)
        buf = bytearray(IMPORT_CHUNK)
        view = memoryview(buf)
        while n := src.readinto(buf) or 0:
            self._builder.update(view[:n])
            _write_runs(self._ob, self._builder.take_nodes())
        return True

    def _copy(self, fd: int, base: int, progress: _CopyProgress) -> None:
        copied = 0
        kernel = hasattr(os, "copy_file_range")
        try:
            while not progress.stop:
                n = 0
                if kernel:
                    try:
                        n = os.copy_file_range(fd, self._data, COPY_STEP, copied, base + copied)
                    except OSError as e:  # no in-kernel copy between these two files
                        if e.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                            raise
                        kernel = False
                if not kernel:
                    n = _copy_slowly(fd, self._data, copied, base + copied)
                if n == 0:
                    break
                copied += n
                if self._sync and copied % SYNC_EVERY < n:
                    os.fdatasync(self._data)  # the disk writes while the rest is copied and hashed
                progress.advance(copied)
        except BaseException as e:
            progress.error = e
        finally:
            progress.finish()

    def finish(self, fmt: BlobFormat = BlobFormat.RAW) -> TempTag:
        """Sync the files and hand them to the store; returns a temp tag on the blob."""
        size = self._builder.length
        root = self._builder.finalize()
        _write_runs(self._ob, self._builder.take_nodes())
        if self._sync:
            os.fdatasync(self._data)
            os.fdatasync(self._ob)
        self._close_files()
        tag = self._adopt(self._data_path, self._ob_path, root, size, fmt)
        self._done = True
        # Still here when the store already had the blob.
        self._data_path.unlink(missing_ok=True)
        self._ob_path.unlink(missing_ok=True)
        return tag

    def _close_files(self) -> None:
        if self._data >= 0:
            os.close(self._data)
            os.close(self._ob)
            self._data = self._ob = -1

    def abort(self) -> None:
        self._close_files()
        self._data_path.unlink(missing_ok=True)
        self._ob_path.unlink(missing_ok=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self._done:
            self.abort()
        else:
            self._close_files()


__all__ = [
    "COPY_STEP",
    "GROUP_SIZE",
    "IMPORT_CHUNK",
    "NODE_SIZE",
    "READ_WINDOW",
    "SYNC_EVERY",
    "BlobFiles",
    "Importer",
    "OpenBlob",
    "group_count",
]
