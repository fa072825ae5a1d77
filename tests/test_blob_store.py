"""The blob store: import/export, verified and range reads, on-disk corruption, partial blobs,
collections, private blobs, tags and GC."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import blake3
import pytest

from hyphal import _core
from hyphal.blobs import BlobFormat, BlobStore, Collection
from hyphal.blobs.private import (
    PrivateBlob,
    export_private_file,
    import_private_bytes,
    import_private_file,
    read_private,
    read_private_range,
)
from hyphal.errors import DecodeError, DecryptionError, InvalidInput, NotAvailable, ProofError

G = _core.BLOB_GROUP_SIZE
WAIT = 10.0


@pytest.fixture
def store(tmp_path: Path) -> BlobStore:
    with BlobStore(tmp_path / "store") as s:
        yield s  # type: ignore[misc]


@pytest.mark.parametrize("size", [0, 1, G - 1, G, G + 1, 3 * 2**20 + 17])
def test_import_ids_equal_blake3(store: BlobStore, tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    with store.import_file(src) as tag:
        assert tag.hash == blake3.blake3(data).digest()
        assert store.has(tag.hash)
        assert store.read(tag.hash) == data
        out = tmp_path / "out"
        store.export_file(tag.hash, out)
        assert out.read_bytes() == data
    again = store.import_bytes(data)
    assert again.hash == tag.hash
    assert len(store.blobs()) == 1


def test_import_stream(store: BlobStore) -> None:
    pieces = [os.urandom(n) for n in (1, 5000, G, 3 * G + 1, 0, 77)]

    async def source() -> AsyncIterator[bytes]:
        for p in pieces:
            yield p

    async def main() -> bytes:
        tag = await store.import_stream(source())
        got = b"".join([p async for p in store.export_stream(tag.hash, window=G)])
        assert got == b"".join(pieces)
        return tag.hash

    assert anyio.run(main) == blake3.blake3(b"".join(pieces)).digest()


def test_range_reads(store: BlobStore) -> None:
    data = os.urandom(5 * G + 99)
    tag = store.import_bytes(data)
    for offset, length in [(0, 1), (G - 1, 2), (G, G), (3 * G + 5, 10**9), (len(data), 5), (7, 0)]:
        assert store.read(tag.hash, offset, length) == data[offset : offset + length]
    with pytest.raises(InvalidInput):
        store.read(tag.hash, len(data) + 1, 1)
    # The encoded range verifies under the hash alone.
    encoded = store.encode_range(tag.hash, 2, 4)
    decoder = _core.RangeDecoder(tag.hash, len(data), 2, 4)
    assert b"".join(run for _, run in decoder.feed(encoded)[1]) == data[2 * G : 4 * G]
    with pytest.raises(InvalidInput):
        store.encode_range(tag.hash, 3, 9)
    with pytest.raises(NotAvailable):
        store.read(os.urandom(32))


@pytest.mark.parametrize("which", ["data", "obao"])
def test_any_byte_corrupted_on_disk_is_caught(store: BlobStore, which: str) -> None:
    data = os.urandom(4 * G + 10)
    tag = store.import_bytes(data)
    path = store.path / "data" / f"{tag.hash.hex()}.{which}"
    original = path.read_bytes()
    for i in range(0, len(original), max(1, len(original) // 40)):
        bad = bytearray(original)
        bad[i] ^= 0x10
        path.write_bytes(bad)
        with pytest.raises(ProofError):
            store.read(tag.hash)
        with pytest.raises(ProofError):
            store.encode_range(tag.hash, 0, 5)
        with pytest.raises(ProofError):
            list(store.iter_verified(tag.hash))
    path.write_bytes(original)
    assert store.read(tag.hash) == data


def test_partial_blob_persists_verified_groups(tmp_path: Path) -> None:
    data = os.urandom(10 * G + 3)
    with BlobStore(tmp_path / "src") as src:
        h = src.import_bytes(data).hash
        response = src.encode_range(h, 2, 5) + b""
        last = src.encode_range(h, 10, 11)
    with BlobStore(tmp_path / "dst") as dst:
        partial = dst.open_partial(h, len(data))
        for start, end, enc in ((2, 5, response), (10, 11, last)):
            nodes, groups = _core.RangeDecoder(h, len(data), start, end).feed(enc)
            partial.write_verified(nodes, groups)
        partial.flush()
        # Readable while open, only where present.
        assert dst.read(h, 2 * G, 3 * G) == data[2 * G : 5 * G]
        with pytest.raises(NotAvailable):
            dst.read(h, 0, 10)
        partial.close()
    with BlobStore(tmp_path / "dst") as dst:
        bits = dst.bits(h)
        assert bits is not None
        assert sorted(bits.runs()) == [(2, 5), (10, 11)]
        assert not dst.has(h)
        assert dst.read(h, 10 * G, 3) == data[10 * G :]
        assert (
            _core.RangeDecoder(h, len(data), 3, 4).feed(dst.encode_range(h, 3, 4))[1][0][1]
            == data[3 * G : 4 * G]
        )
        partial = dst.open_partial(h, len(data))
        with BlobStore(tmp_path / "src") as src:
            for start, end in ((0, 2), (5, 10)):
                nodes, groups = _core.RangeDecoder(h, len(data), start, end).feed(
                    src.encode_range(h, start, end)
                )
                partial.write_verified(nodes, groups)
        assert partial.complete
        partial.close()
        assert dst.has(h)
        assert dst.read(h) == data


def test_collections(store: BlobStore) -> None:
    a, b = store.import_bytes(b"alpha"), store.import_bytes(b"beta" * 10000)
    coll = Collection({"b.txt": b.hash, "a.txt": a.hash, "dir/é": a.hash})
    ctag = store.import_collection(coll)
    loaded = store.load_collection(ctag.hash)
    assert list(loaded) == ["a.txt", "b.txt", "dir/é"]
    assert dict(loaded) == dict(coll)
    assert Collection(dict(reversed(list(coll.items())))).encode() == coll.encode()  # canonical
    with pytest.raises(ProofError):
        Collection.decode(coll.encode(), os.urandom(32))
    for bad in (b"HYPHALC1\x01\x00\x00\x00", b"NOTMAGIC\x00\x00\x00\x00", coll.encode() + b"x"):
        with pytest.raises(DecodeError):
            Collection.decode(bad, blake3.blake3(bad).digest())
    with pytest.raises(DecodeError):
        store.load_collection(a.hash)
    with pytest.raises(InvalidInput):
        Collection({"": a.hash})


def test_private_blob_round_trip(store: BlobStore, tmp_path: Path) -> None:
    plain = os.urandom(3 * _core.BLOB_SEGMENT_SIZE + 5)
    ref, tag = import_private_bytes(store, plain)
    assert tag.hash == ref.hash != blake3.blake3(plain).digest()
    assert ref.plaintext_hash == blake3.blake3(plain).digest()
    stored = store.read(ref.hash)
    assert plain[:64] not in stored
    assert len(stored) == _core.blob_sealed_size(len(plain))
    assert read_private(store, PrivateBlob.from_bytes(ref.to_bytes())) == plain
    src = tmp_path / "plain"
    src.write_bytes(plain)
    ref2, _ = import_private_file(store, src, key=ref.key)
    assert ref2 == ref  # same key, same plaintext: same ciphertext
    export_private_file(store, ref, tmp_path / "out")
    assert (tmp_path / "out").read_bytes() == plain
    with pytest.raises(DecryptionError):
        read_private(store, PrivateBlob(ref.hash, os.urandom(32), ref.size, ref.plaintext_hash))
    with pytest.raises(DecryptionError):
        read_private(store, PrivateBlob(ref.hash, ref.key, ref.size, os.urandom(32)))
    empty, _ = import_private_bytes(store, b"")
    assert read_private(store, empty) == b""
    assert read_private_range(store, empty, 0, 10) == b""
    seg = _core.BLOB_SEGMENT_SIZE
    for offset, length in [(0, 1), (seg - 1, 2), (seg, seg), (2 * seg + 3, 10**9), (len(plain), 4)]:
        assert read_private_range(store, ref, offset, length) == plain[offset : offset + length]
    with pytest.raises(InvalidInput):
        read_private_range(store, ref, len(plain) + 1, 1)


def test_gc_keeps_pinned_and_collects_the_rest(store: BlobStore) -> None:
    named = store.import_bytes(b"named")
    store.set_tag("keep", named.hash)
    child = store.import_bytes(b"child")
    coll = store.import_collection(Collection({"c": child.hash}))
    store.set_tag("coll", coll.hash, BlobFormat.COLLECTION)
    held = store.import_bytes(b"held by a temp tag")
    loose = store.import_bytes(b"loose")
    dropped = store.import_bytes(b"dropped").hash
    loose.release()
    for tag in (named, child, coll):
        tag.release()
    deleted = set(store.gc())
    assert deleted == {loose.hash, dropped}  # a temp tag no one holds any more pins nothing
    for h in (named.hash, child.hash, coll.hash, held.hash):
        assert store.has(h)
    store.delete_tag("coll")
    held.release()
    assert set(store.gc()) == {coll.hash, child.hash, held.hash}
    assert store.has(named.hash)
    assert not store.has(loose.hash)
    assert not list((store.path / "data").glob(f"{loose.hash.hex()}*"))


def test_blob_tagged_while_gc_runs_is_never_deleted(store: BlobStore) -> None:
    """iroh-blobs#247: GC marks, then someone tags a blob it found dead; it must survive."""
    hashes = []
    for i in range(20):
        tag = store.import_bytes(f"blob {i}".encode())
        hashes.append(tag.hash)
        tag.release()
    coll_tag = store.import_collection(Collection({"x": hashes[5]}))
    coll = coll_tag.hash
    coll_tag.release()
    marked, tagged = threading.Event(), threading.Event()
    result: list[bytes] = []

    def pause() -> None:
        marked.set()
        assert tagged.wait(WAIT)

    gc = threading.Thread(target=lambda: result.extend(store.gc(on_marked=pause)))
    gc.start()
    assert marked.wait(WAIT)
    store.set_tag("late", hashes[3])
    temp = store.temp_tag(hashes[7])
    store.set_tag("late collection", coll, BlobFormat.COLLECTION)
    tagged.set()
    gc.join(WAIT)
    assert not gc.is_alive()
    for h in (hashes[3], hashes[7], coll, hashes[5]):
        assert store.has(h), h.hex()
        assert h not in result
    assert len(result) == 17
    temp.release()


@pytest.mark.parametrize("size", [4 * G, 4 * G + 1, 20 * G + 3])
def test_import_file_in_many_copy_steps(
    store: BlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    """The kernel copy and the hashing behind it meet at every step boundary."""
    monkeypatch.setattr("hyphal.blobs.files.COPY_STEP", 4 * G)
    monkeypatch.setattr("hyphal.blobs.files.SYNC_EVERY", 8 * G)
    data = os.urandom(size)
    src = tmp_path / "src"
    src.write_bytes(data)
    tag = store.import_file(src)
    assert tag.hash == blake3.blake3(data).digest()
    assert store.read(tag.hash) == data
    assert not list((store.path / "tmp").iterdir())


def test_import_by_link(store: BlobStore, tmp_path: Path) -> None:
    data = os.urandom(3 * G + 7)
    src = tmp_path / "linked"
    src.write_bytes(data)
    tag = store.import_file(src, mode="link")
    assert tag.hash == blake3.blake3(data).digest()
    stored = store.path / "data" / f"{tag.hash.hex()}.data"
    assert stored.stat().st_ino == src.stat().st_ino  # no second copy
    src.unlink()  # the owner deleting its name is fine
    assert store.read(tag.hash) == data
    # The owner rewriting the shared file in place: caught on read, never served.
    with open(stored, "r+b") as f:
        f.seek(G + 1)
        f.write(b"X")
    with pytest.raises(ProofError):
        store.read(tag.hash)


def test_private_range_of_a_partial_blob(store: BlobStore, tmp_path: Path) -> None:
    plain = os.urandom(3 * _core.BLOB_SEGMENT_SIZE)
    ref, _ = import_private_bytes(store, plain)
    size = _core.blob_sealed_size(len(plain))
    with BlobStore(tmp_path / "backup") as backup:
        partial = backup.open_partial(ref.hash, size)
        nodes, groups = _core.RangeDecoder(ref.hash, size, 1, 2).feed(store.encode_range(ref.hash, 1, 2))
        partial.write_verified(nodes, groups)
        partial.flush()
        seg = _core.BLOB_SEGMENT_SIZE
        assert read_private_range(backup, ref, seg + 5, 100) == plain[seg + 5 : seg + 105]
        with pytest.raises(NotAvailable):
            read_private_range(backup, ref, 0, 1)
        partial.close()


def test_gc_spares_downloads_in_progress(store: BlobStore) -> None:
    h = os.urandom(32)
    partial = store.open_partial(h, 5 * G)
    assert store.gc() == []
    assert store.info(h) is not None
    partial.close()  # no tag pins it any more: the next GC takes the partial blob
    assert store.gc() == [h]
    assert store.info(h) is None
