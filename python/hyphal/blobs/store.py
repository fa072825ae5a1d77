"""The blob store: content-addressed blobs on disk, complete or partial.

Layout under the store's directory (docs/PROTOCOL.md §12.1)::

    blobs.db              SQLite (WAL): blobs(hash, size, complete, bitfield), tags(name, hash, format)
    data/<hex>.data       the blob's bytes (a partial blob's file is full size, holes unread)
    data/<hex>.obao       its outboard: in-order parent nodes, 64 bytes each
    tmp/                  imports in progress (emptied on open)

Every byte read back is verified against the blob's hash before use (the
Rust walk checks each group and each node on its path up to the root), so a
corrupt disk yields :class:`~hyphal.errors.ProofError`, never bad data.

Crash safety of partial blobs: verified groups and their proof nodes are
``pwrite``-n first; :meth:`PartialBlob.flush` ``fdatasync``-s the data and
outboard files and only then commits the bitfield that marks those groups.
After a ``kill -9`` the groups written since the last flush are simply
absent again, and nothing unverified is ever written at all.

GC safety: every way of pinning a blob (named tag, temp tag, import, partial
download) goes through one lock. GC marks the live set under it, then
deletes each dead blob under it too, skipping any hash pinned since the mark
(the "touched" set) — so a blob tagged while GC runs is never deleted
(iroh-blobs#247).
"""

from __future__ import annotations

import contextlib
import enum
import errno
import logging
import mmap
import os
import secrets
import sqlite3
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from io import FileIO
from pathlib import Path
from typing import Literal, Self

from typing_extensions import Buffer

from hyphal import _core
from hyphal.blobs.bitfield import GroupBits
from hyphal.blobs.collection import Collection
from hyphal.errors import DecodeError, InvalidInput, NotAvailable
from hyphal.files import fsync_dir

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

_SCHEMA = """
CREATE TABLE IF NOT EXISTS blobs (
    hash BLOB PRIMARY KEY,
    size INTEGER NOT NULL,
    complete INTEGER NOT NULL,
    bitfield BLOB
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tags (
    name TEXT PRIMARY KEY,
    hash BLOB NOT NULL,
    format INTEGER NOT NULL
) WITHOUT ROWID;
"""


class BlobFormat(enum.IntEnum):
    """What a tag pins: the blob alone, or a collection and every blob it names."""

    RAW = 0
    COLLECTION = 1


@dataclass(frozen=True)
class BlobInfo:
    hash: bytes
    size: int
    complete: bool


def _check_hash(hash_: Buffer) -> bytes:
    h = bytes(hash_)
    if len(h) != 32:
        raise InvalidInput(f"a blob hash is 32 bytes, not {len(h)}")
    return h


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


class TempTag:
    """Pins a blob (and, for a collection, what it names) until :meth:`release`."""

    def __init__(self, store: BlobStore, hash_: bytes, fmt: BlobFormat) -> None:
        self.store = store
        self.hash = hash_
        self.format = fmt
        self._released = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self.store._drop_temp(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"TempTag({self.hash.hex()[:16]}…, {self.format.name})"


class _Files:
    """Open data and outboard files of one blob, and a read map of the outboard."""

    def __init__(self, data_path: Path, outboard_path: Path, size: int, *, writable: bool) -> None:
        flags = os.O_RDWR if writable else os.O_RDONLY
        self.size = size
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

    def read_groups(self, start: int, end: int) -> bytes:
        lo, hi = min(start * GROUP_SIZE, self.size), min(end * GROUP_SIZE, self.size)
        return _pread_exact(self.data, hi - lo, lo)


class PartialBlob:
    """A blob being downloaded: write verified groups, flush to make them durable.

    Only output of :class:`hyphal._core.RangeDecoder` (already verified against
    the hash) may be written. Made by :meth:`BlobStore.open_partial`.
    """

    def __init__(self, store: BlobStore, hash_: bytes, size: int, bits: GroupBits, files: _Files) -> None:
        self.store = store
        self.hash = hash_
        self.size = size
        self.bits = bits
        self._files = files
        self._unflushed = 0
        self._committed_complete = False
        self._tag = store.temp_tag(hash_)
        self.closed = False

    @property
    def complete(self) -> bool:
        return self.bits.complete

    def write_verified(self, nodes: list[tuple[int, bytes]], groups: list[tuple[int, bytes]]) -> int:
        """Store decoder output; returns the bytes of new groups. Durable after :meth:`flush`."""
        if self.closed:
            raise InvalidInput("partial blob is closed")
        _write_runs(self._files.outboard, nodes)
        new = 0
        for first, data in groups:
            _write_runs(self._files.data, [(first * GROUP_SIZE, data)])
            count = max(1, -(-len(data) // GROUP_SIZE))
            for i in range(first, first + count):
                if self.bits.add(i):
                    new += min(GROUP_SIZE, self.size - i * GROUP_SIZE)
                    self._unflushed += 1
        return new

    def flush(self) -> None:
        """fdatasync data and outboard, then commit the bitfield (and completion)."""
        if self.closed or not (self._unflushed or (self.complete and not self._committed_complete)):
            return
        if self.store.sync:
            os.fdatasync(self._files.data)
            os.fdatasync(self._files.outboard)
        self._unflushed = 0
        self.store._commit_partial(self)
        self._committed_complete = self.complete

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.closed = True
            self._files.close()
            self.store._partials.pop(self.hash, None)
            self._tag.release()


class BlobStore:
    """Blobs in a directory; see the module docstring for layout and guarantees.

    ``sync=False`` skips fdatasync (tests and benches of throughput only:
    durability against power loss is then gone, not against process crashes).
    The store may be used from several threads; one lock guards its state.
    """

    def __init__(self, path: str | os.PathLike[str], *, sync: bool = True) -> None:
        self.path = Path(path)
        self.sync = sync
        self._data_dir = self.path / "data"
        self._tmp_dir = self.path / "tmp"
        for d in (self.path, self._data_dir, self._tmp_dir):
            d.mkdir(parents=True, exist_ok=True)
        for leftover in self._tmp_dir.iterdir():
            leftover.unlink()
        self._db = sqlite3.connect(self.path / "blobs.db", isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.RLock()
        # Weak: a temp tag that is dropped unpins its blob, like one released.
        self._temp: weakref.WeakValueDictionary[int, TempTag] = weakref.WeakValueDictionary()
        self._partials: dict[bytes, PartialBlob] = {}
        self._gc_touched: set[bytes] | None = None
        self._closed = False

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            for partial in list(self._partials.values()):
                partial.close()
            self._db.close()
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- paths and rows ------------------------------------------------------------

    def _paths(self, hash_: bytes) -> tuple[Path, Path]:
        name = hash_.hex()
        return self._data_dir / f"{name}.data", self._data_dir / f"{name}.obao"

    def _row(self, hash_: bytes) -> tuple[int, bool, bytes | None] | None:
        row = self._db.execute(
            "SELECT size, complete, bitfield FROM blobs WHERE hash = ?", (hash_,)
        ).fetchone()
        if row is None:
            return None
        size, complete, bits = row
        if not isinstance(size, int) or size < 0:
            raise DecodeError(f"blob row {hash_.hex()} is malformed")
        return size, bool(complete), bits

    # -- queries ---------------------------------------------------------------------

    def info(self, hash_: Buffer) -> BlobInfo | None:
        h = _check_hash(hash_)
        with self._lock:
            partial = self._partials.get(h)
            if partial is not None:
                return BlobInfo(h, partial.size, partial.complete)
            row = self._row(h)
        return None if row is None else BlobInfo(h, row[0], row[1])

    def has(self, hash_: Buffer) -> bool:
        """Whether the whole blob is here."""
        info = self.info(hash_)
        return info is not None and info.complete

    def blobs(self) -> list[BlobInfo]:
        with self._lock:
            rows = self._db.execute("SELECT hash, size, complete FROM blobs").fetchall()
        return [BlobInfo(bytes(h), s, bool(c)) for h, s, c in rows]

    def bits(self, hash_: Buffer) -> GroupBits | None:
        """The groups held of a blob (a copy), or ``None`` if none of it is here."""
        h = _check_hash(hash_)
        with self._lock:
            partial = self._partials.get(h)
            if partial is not None:
                return GroupBits(partial.bits.count, partial.bits.to_bytes())
            row = self._row(h)
        if row is None:
            return None
        size, complete, raw = row
        n = group_count(size)
        return GroupBits(n, full=True) if complete else GroupBits(n, raw or None)

    # -- reading ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _reader(self, h: bytes) -> Iterator[tuple[int, GroupBits | None, _Files]]:
        """Open files of a blob with what is known to be in them (``None``: everything)."""
        with self._lock:
            partial = self._partials.get(h)
            present: GroupBits | None
            if partial is not None:
                size, present = partial.size, GroupBits(partial.bits.count, partial.bits.to_bytes())
            else:
                row = self._row(h)
                if row is None:
                    raise NotAvailable(f"blob {h.hex()} is not here")
                size, complete, raw = row
                present = None if complete else GroupBits(group_count(size), raw or None)
            try:
                files = _Files(*self._paths(h), size, writable=False)
            except FileNotFoundError:
                raise NotAvailable(f"blob {h.hex()} is not here") from None
        try:
            yield size, present, files
        finally:
            files.close()

    @staticmethod
    def _require(h: bytes, present: GroupBits | None, start: int, end: int) -> None:
        if present is not None and any(True for _ in present.runs(False, start, end)):
            raise NotAvailable(f"blob {h.hex()} lacks some of groups [{start}, {end})")

    def encode_range(self, hash_: Buffer, start: int, end: int) -> bytes:
        """The verified wire response for groups ``[start, end)`` (see :class:`hyphal._core.RangeDecoder`).

        Raises :class:`NotAvailable` if any of them is missing, ``InvalidInput``
        if the range is outside the blob, ``ProofError`` if the store is corrupt.
        """
        h = _check_hash(hash_)
        with self._reader(h) as (size, present, files):
            if not 0 <= start < end <= group_count(size):
                raise InvalidInput(f"group range [{start}, {end}) is outside the blob")
            self._require(h, present, start, end)
            data = files.read_groups(start, end)
            return _core.blob_encode_range(h, size, files.map, data, start, end)

    def read(self, hash_: Buffer, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``[offset, offset + length)`` of a complete or partial blob, verified."""
        h = _check_hash(hash_)
        with self._reader(h) as (size, present, files):
            end_byte = size if length is None else min(size, offset + length)
            if offset < 0 or (length is not None and length < 0) or offset > size:
                raise InvalidInput(f"byte range at {offset} is outside a blob of {size} bytes")
            start = min(offset // GROUP_SIZE, group_count(size) - 1)
            end = max(start + 1, -(-end_byte // GROUP_SIZE))
            self._require(h, present, start, end)
            data = files.read_groups(start, end)
            _core.blob_verify_range(h, size, files.map, data, start, end)
            lo = start * GROUP_SIZE
            return data[offset - lo : end_byte - lo]

    def iter_verified(self, hash_: Buffer, window: int = READ_WINDOW) -> Iterator[bytes]:
        """The whole complete blob, in verified pieces of about ``window`` bytes."""
        h = _check_hash(hash_)
        with self._reader(h) as (size, present, files):
            if present is not None:
                raise NotAvailable(f"blob {h.hex()} is partial")
            n, step = group_count(size), max(1, window // GROUP_SIZE)
            for start in range(0, n, step):
                end = min(n, start + step)
                data = files.read_groups(start, end)
                _core.blob_verify_range(h, size, files.map, data, start, end)
                yield data

    def export_file(self, hash_: Buffer, path: str | os.PathLike[str]) -> None:
        """Write the verified blob to ``path`` (written beside it, then renamed into place)."""
        target = Path(path)
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.part")
        try:
            with open(tmp, "wb") as out:
                for piece in self.iter_verified(hash_):
                    out.write(piece)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)

    async def export_stream(self, hash_: Buffer, window: int = READ_WINDOW) -> AsyncIterator[bytes]:
        for piece in self.iter_verified(hash_, window):
            yield piece

    def load_collection(self, hash_: Buffer) -> Collection:
        h = _check_hash(hash_)
        return Collection.decode(self.read(h), h)

    # -- importing -------------------------------------------------------------------

    def importer(self) -> Importer:
        """An import in progress: :meth:`Importer.write` pieces, then :meth:`Importer.finish`."""
        return Importer(self)

    def import_bytes(self, data: Buffer, fmt: BlobFormat = BlobFormat.RAW) -> TempTag:
        with self.importer() as imp:
            imp.write(data)
            return imp.finish(fmt)

    def import_file(
        self,
        path: str | os.PathLike[str],
        fmt: BlobFormat = BlobFormat.RAW,
        *,
        mode: Literal["copy", "link"] = "copy",
    ) -> TempTag:
        """Import a file of any size; returns a temp tag on it.

        ``mode="copy"`` (the default): the kernel copies the file into the
        store while this thread hashes what was copied (see
        :meth:`Importer.copy_from`), so the id always matches the bytes stored.

        ``mode="link"``: the store hard-links the file instead of copying it
        (no second copy on disk; falls back to a copy across filesystems).
        The store then shares the file with its owner: if the owner later
        changes it in place, reads of the blob fail verification
        (``ProofError``) instead of returning the new bytes, and the blob is
        lost; deleting or replacing the file by rename is safe.

        Either way, a file that changes during the import (size or mtime)
        fails it with ``InvalidInput``.
        """
        with open(path, "rb", buffering=0) as src, self.importer() as imp:
            before = os.fstat(src.fileno())
            if not (mode == "link" and imp.link_from(path, src)):
                imp.copy_from(src)
            after = os.fstat(src.fileno())
            if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
                raise InvalidInput(f"{path} changed while it was imported")
            return imp.finish(fmt)

    async def import_stream(self, chunks: AsyncIterable[Buffer], fmt: BlobFormat = BlobFormat.RAW) -> TempTag:
        with self.importer() as imp:
            async for chunk in chunks:
                imp.write(chunk)
            return imp.finish(fmt)

    def import_collection(self, collection: Collection) -> TempTag:
        return self.import_bytes(collection.encode(), BlobFormat.COLLECTION)

    def _adopt(self, data_tmp: Path, ob_tmp: Path, h: bytes, size: int, fmt: BlobFormat) -> TempTag:
        """Move a finished import into place and pin it, atomically with respect to GC."""
        data_path, ob_path = self._paths(h)
        with self._lock:
            tag = self.temp_tag(h, fmt)
            row = self._row(h)
            if row is not None and row[1]:
                return tag
            partial = self._partials.pop(h, None)
            if partial is not None:
                partial.closed = True
                partial._files.close()
                partial._tag.release()
            os.replace(data_tmp, data_path)
            os.replace(ob_tmp, ob_path)
            if self.sync:
                fsync_dir(self._data_dir)
            self._db.execute(
                "INSERT OR REPLACE INTO blobs (hash, size, complete, bitfield) VALUES (?, ?, 1, NULL)",
                (h, size),
            )
            return tag

    # -- partial blobs -----------------------------------------------------------------

    def open_partial(self, hash_: Buffer, size: int) -> PartialBlob:
        """Start or resume a download of a blob whose ``size`` the caller has verified.

        The size is verified by checking the blob's last group (a
        :class:`~hyphal._core.RangeDecoder` over it succeeds only for the true
        size). A partial blob stays pinned until closed.
        """
        h = _check_hash(hash_)
        if size < 0:
            raise InvalidInput("size must not be negative")
        with self._lock:
            if h in self._partials:
                raise InvalidInput(f"blob {h.hex()} is already being downloaded")
            row = self._row(h)
            data_path, ob_path = self._paths(h)
            n = group_count(size)
            if row is not None and row[0] != size:
                log.warning("partial blob %s: stored size %d, now %d; starting over", h.hex(), row[0], size)
                row = None
            if row is not None and row[1]:
                bits = GroupBits(n, full=True)
            elif row is not None:
                try:
                    bits = GroupBits(n, row[2] or None)
                except DecodeError as e:
                    log.warning("partial blob %s: %s; starting over", h.hex(), e)
                    bits = GroupBits(n)
            else:
                bits = GroupBits(n)
            if not data_path.exists() or not ob_path.exists() or row is None:
                for p, length in ((data_path, size), (ob_path, _core.blob_outboard_size(size))):
                    with open(p, "wb") as f:
                        f.truncate(length)
                if self.sync:
                    fsync_dir(self._data_dir)
                self._db.execute(
                    "INSERT OR REPLACE INTO blobs (hash, size, complete, bitfield) VALUES (?, ?, 0, ?)",
                    (h, size, bits.to_bytes()),
                )
            partial = PartialBlob(self, h, size, bits, _Files(data_path, ob_path, size, writable=True))
            self._partials[h] = partial
            return partial

    def _commit_partial(self, partial: PartialBlob) -> None:
        with self._lock:
            if partial.bits.complete:
                self._db.execute(
                    "UPDATE blobs SET complete = 1, bitfield = NULL WHERE hash = ?", (partial.hash,)
                )
            else:
                self._db.execute(
                    "UPDATE blobs SET bitfield = ? WHERE hash = ?", (partial.bits.to_bytes(), partial.hash)
                )

    # -- tags ----------------------------------------------------------------------------

    def _pin(self, h: bytes, fmt: BlobFormat) -> None:
        """Note a new pin for a GC that is running (call with the lock held)."""
        if self._gc_touched is not None:
            self._gc_touched.add(h)
            if fmt is BlobFormat.COLLECTION:
                self._gc_touched.update(self._children(h))

    def temp_tag(self, hash_: Buffer, fmt: BlobFormat = BlobFormat.RAW) -> TempTag:
        h = _check_hash(hash_)
        with self._lock:
            tag = TempTag(self, h, fmt)
            self._temp[id(tag)] = tag
            self._pin(h, fmt)
            return tag

    def _drop_temp(self, tag: TempTag) -> None:
        with self._lock:
            self._temp.pop(id(tag), None)

    def set_tag(self, name: str, hash_: Buffer, fmt: BlobFormat = BlobFormat.RAW) -> None:
        h = _check_hash(hash_)
        with self._lock:
            self._db.execute(
                "INSERT OR REPLACE INTO tags (name, hash, format) VALUES (?, ?, ?)", (name, h, int(fmt))
            )
            self._pin(h, fmt)

    def delete_tag(self, name: str) -> None:
        with self._lock:
            self._db.execute("DELETE FROM tags WHERE name = ?", (name,))

    def tags(self) -> dict[str, tuple[bytes, BlobFormat]]:
        with self._lock:
            rows = self._db.execute("SELECT name, hash, format FROM tags").fetchall()
        return {name: (bytes(h), BlobFormat(f)) for name, h, f in rows}

    # -- GC ---------------------------------------------------------------------------------

    def _children(self, h: bytes) -> list[bytes]:
        """Hashes a collection names, if it is here and parses (lock held)."""
        try:
            return list(self.load_collection(h).values())
        except (NotAvailable, DecodeError):
            return []
        except Exception as e:  # a corrupt collection blob pins nothing more
            log.warning("collection %s cannot be read: %s", h.hex(), e)
            return []

    def _live(self) -> set[bytes]:
        roots: list[tuple[bytes, BlobFormat]] = [(h, f) for h, f in self.tags().values()]
        roots += [(t.hash, t.format) for t in list(self._temp.values())]
        live: set[bytes] = set(self._partials)
        for h, fmt in roots:
            live.add(h)
            if fmt is BlobFormat.COLLECTION:
                live.update(self._children(h))
        return live

    def gc(self, *, on_marked: Callable[[], None] | None = None) -> list[bytes]:
        """Delete every blob no tag, temp tag or download pins; returns their hashes.

        ``on_marked`` runs after the live set is computed and before anything
        is deleted (tests use it to tag concurrently).
        """
        with self._lock:
            self._gc_touched = set()
            live = self._live()
            known = {bytes(h) for (h,) in self._db.execute("SELECT hash FROM blobs")}
            on_disk: set[bytes] = set()
            for p in self._data_dir.iterdir():
                with contextlib.suppress(ValueError):
                    on_disk.add(bytes.fromhex(p.name.partition(".")[0]))
            dead = sorted((known | on_disk) - live)
        deleted: list[bytes] = []
        try:
            if on_marked is not None:
                on_marked()
            for h in dead:
                with self._lock:
                    if h in self._gc_touched or h in self._partials:
                        continue
                    self._db.execute("DELETE FROM blobs WHERE hash = ?", (h,))
                    for p in self._paths(h):
                        p.unlink(missing_ok=True)
                deleted.append(h)
        finally:
            with self._lock:
                self._gc_touched = None
        if deleted:
            log.info("gc deleted %d blobs", len(deleted))
        return deleted


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
    """Hashes and writes a blob as it arrives; :meth:`finish` moves it into the store."""

    def __init__(self, store: BlobStore) -> None:
        self.store = store
        name = secrets.token_hex(8)
        self._data_path = store._tmp_dir / f"{name}.data"
        self._ob_path = store._tmp_dir / f"{name}.obao"
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
                if self.store.sync and copied % SYNC_EVERY < n:
                    os.fdatasync(self._data)  # the disk writes while the rest is copied and hashed
                progress.advance(copied)
        except BaseException as e:
            progress.error = e
        finally:
            progress.finish()

    def finish(self, fmt: BlobFormat = BlobFormat.RAW) -> TempTag:
        size = self._builder.length
        root = self._builder.finalize()
        _write_runs(self._ob, self._builder.take_nodes())
        if self.store.sync:
            os.fdatasync(self._data)
            os.fdatasync(self._ob)
        self._close_files()
        tag = self.store._adopt(self._data_path, self._ob_path, root, size, fmt)
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


__all__ = ["GROUP_SIZE", "BlobFormat", "BlobInfo", "BlobStore", "Importer", "PartialBlob", "TempTag"]
