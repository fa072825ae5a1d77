"""The blob store: content-addressed blobs on disk, complete or partial.

:class:`BlobStore` is the face; it composes the files
(:mod:`hyphal.blobs.files`: data, outboards, imports, verified range reads)
and the catalog (:mod:`hyphal.blobs.catalog`: the SQLite index of blobs and
named tags), and keeps what ties them together: the lock, temp tags, open
partial blobs, and GC. Layout: docs/PROTOCOL.md §12.2.

Crash safety: a file is always durable before the catalog row that points at
it. An import's files are fdatasync'ed in ``tmp/``, renamed into ``data/``
(the directory fsync'ed), and only then is its ``complete`` row committed.
A partial blob's verified groups and their proof nodes are ``pwrite``-n
first; :meth:`PartialBlob.flush` ``fdatasync``-s the data and outboard files
and only then commits the bitfield that marks those groups. After a
``kill -9`` the groups written since the last flush are simply absent again,
and nothing unverified is ever written at all.

GC safety: every way of pinning a blob (named tag, temp tag, import, partial
download) goes through one lock. GC marks the live set under it, then
deletes each dead blob under it too, skipping any hash pinned since the mark
(the "touched" set) — so a blob tagged while GC runs is never deleted
(iroh-blobs#247).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import threading
import weakref
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Literal, Self

from typing_extensions import Buffer

from hyphal.blobs.bitfield import GroupBits
from hyphal.blobs.catalog import BlobCatalog, BlobFormat, BlobInfo
from hyphal.blobs.collection import Collection
from hyphal.blobs.files import GROUP_SIZE, READ_WINDOW, BlobFiles, Importer, OpenBlob, group_count
from hyphal.errors import DecodeError, InvalidInput, NotAvailable

log = logging.getLogger("hyphal.blobs")


def _check_hash(hash_: Buffer) -> bytes:
    h = bytes(hash_)
    if len(h) != 32:
        raise InvalidInput(f"a blob hash is 32 bytes, not {len(h)}")
    return h


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


class PartialBlob:
    """A blob being downloaded: write verified groups, flush to make them durable.

    Only output of :class:`hyphal._core.RangeDecoder` (already verified against
    the hash) may be written. Made by :meth:`BlobStore.open_partial`.
    """

    def __init__(self, store: BlobStore, hash_: bytes, size: int, bits: GroupBits, files: OpenBlob) -> None:
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
        self._files.write_nodes(nodes)
        new = 0
        for first, data in groups:
            self._files.write_groups(first, data)
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
            self._files.sync()
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
        self._files = BlobFiles(self.path, sync=sync)
        self._catalog = BlobCatalog(self.path)
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
            self._catalog.close()
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- queries ---------------------------------------------------------------------

    def info(self, hash_: Buffer) -> BlobInfo | None:
        h = _check_hash(hash_)
        with self._lock:
            partial = self._partials.get(h)
            if partial is not None:
                return BlobInfo(h, partial.size, partial.complete)
            row = self._catalog.row(h)
        return None if row is None else BlobInfo(h, row.size, row.complete)

    def has(self, hash_: Buffer) -> bool:
        """Whether the whole blob is here."""
        info = self.info(hash_)
        return info is not None and info.complete

    def blobs(self) -> list[BlobInfo]:
        with self._lock:
            return self._catalog.infos()

    def bits(self, hash_: Buffer) -> GroupBits | None:
        """The groups held of a blob (a copy), or ``None`` if none of it is here."""
        h = _check_hash(hash_)
        with self._lock:
            partial = self._partials.get(h)
            if partial is not None:
                return GroupBits(partial.bits.count, partial.bits.to_bytes())
            row = self._catalog.row(h)
        if row is None:
            return None
        n = group_count(row.size)
        return GroupBits(n, full=True) if row.complete else GroupBits(n, row.bitfield or None)

    # -- reading ---------------------------------------------------------------------

    @contextlib.contextmanager
    def _reader(self, h: bytes) -> Iterator[OpenBlob]:
        """The blob's files, open for reading what is known to be in them."""
        with self._lock:
            partial = self._partials.get(h)
            present: GroupBits | None
            if partial is not None:
                size, present = partial.size, GroupBits(partial.bits.count, partial.bits.to_bytes())
            else:
                row = self._catalog.row(h)
                if row is None:
                    raise NotAvailable(f"blob {h.hex()} is not here")
                size = row.size
                present = None if row.complete else GroupBits(group_count(size), row.bitfield or None)
            try:
                blob = self._files.open_blob(h, size, writable=False, present=present)
            except FileNotFoundError:
                raise NotAvailable(f"blob {h.hex()} is not here") from None
        try:
            yield blob
        finally:
            blob.close()

    def encode_range(self, hash_: Buffer, start: int, end: int) -> bytes:
        """The verified wire response for groups ``[start, end)`` (see :class:`hyphal._core.RangeDecoder`).

        Raises :class:`NotAvailable` if any of them is missing, ``InvalidInput``
        if the range is outside the blob, ``ProofError`` if the store is corrupt.
        """
        with self._reader(_check_hash(hash_)) as blob:
            return blob.encode_range(start, end)

    def read(self, hash_: Buffer, offset: int = 0, length: int | None = None) -> bytes:
        """Bytes ``[offset, offset + length)`` of a complete or partial blob, verified."""
        with self._reader(_check_hash(hash_)) as blob:
            return blob.read(offset, length)

    def iter_verified(self, hash_: Buffer, window: int = READ_WINDOW) -> Iterator[bytes]:
        """The whole complete blob, in verified pieces of about ``window`` bytes."""
        with self._reader(_check_hash(hash_)) as blob:
            yield from blob.verified_pieces(window)

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
        return Importer(self._files, self._adopt)

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
        with self._lock:
            tag = self.temp_tag(h, fmt)
            row = self._catalog.row(h)
            if row is not None and row.complete:
                return tag
            partial = self._partials.pop(h, None)
            if partial is not None:
                partial.closed = True
                partial._files.close()
                partial._tag.release()
            self._files.install(data_tmp, ob_tmp, h)
            self._catalog.put_complete(h, size)
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
            row = self._catalog.row(h)
            n = group_count(size)
            if row is not None and row.size != size:
                log.warning("partial blob %s: stored size %d, now %d; starting over", h.hex(), row.size, size)
                row = None
            if row is not None and row.complete:
                bits = GroupBits(n, full=True)
            elif row is not None:
                try:
                    bits = GroupBits(n, row.bitfield or None)
                except DecodeError as e:
                    log.warning("partial blob %s: %s; starting over", h.hex(), e)
                    bits = GroupBits(n)
            else:
                bits = GroupBits(n)
            if row is None or not self._files.exist(h):
                # Files first, synced: the row must never name files that are not there.
                self._files.create_sparse(h, size)
                self._catalog.put_partial(h, size, bits.to_bytes())
            partial = PartialBlob(self, h, size, bits, self._files.open_blob(h, size, writable=True))
            self._partials[h] = partial
            return partial

    def _commit_partial(self, partial: PartialBlob) -> None:
        with self._lock:
            if partial.bits.complete:
                self._catalog.set_complete(partial.hash)
            else:
                self._catalog.set_bitfield(partial.hash, partial.bits.to_bytes())

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
            self._catalog.set_tag(name, h, fmt)
            self._pin(h, fmt)

    def delete_tag(self, name: str) -> None:
        with self._lock:
            self._catalog.delete_tag(name)

    def tags(self) -> dict[str, tuple[bytes, BlobFormat]]:
        with self._lock:
            return self._catalog.tags()

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
            dead = sorted((self._catalog.hashes() | self._files.hashes()) - live)
        deleted: list[bytes] = []
        try:
            if on_marked is not None:
                on_marked()
            for h in dead:
                with self._lock:
                    if h in self._gc_touched or h in self._partials:
                        continue
                    self._catalog.delete(h)
                    self._files.delete(h)
                deleted.append(h)
        finally:
            with self._lock:
                self._gc_touched = None
        if deleted:
            log.info("gc deleted %d blobs", len(deleted))
        return deleted


__all__ = [
    "GROUP_SIZE",
    "BlobFormat",
    "BlobInfo",
    "BlobStore",
    "Importer",
    "PartialBlob",
    "TempTag",
    "group_count",
]
