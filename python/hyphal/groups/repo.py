"""A member's data repo: a feed of collection operations, and the collection it spells.

Each member device of a group writes its own repo feed. Block ``i`` of the
feed is one :class:`Put` (name → blob) or :class:`Delete` (name); replaying
the blocks in order gives the repo's current :class:`Collection`. The byte
layouts are in docs/PROTOCOL.md §14.1. Names are checked so that a peer's
repo can never name a file outside the directory it is exported to.
"""

from __future__ import annotations

import logging
import struct
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias

from typing_extensions import Buffer

from hyphal.errors import DecodeError, InvalidInput
from hyphal.feed import Feed, Manifest
from hyphal.groups.keys import WRAPPED_KEY_SIZE, GroupKeys
from hyphal.hashing import derive_key
from hyphal.notifier import Notifier
from hyphal.signing import KeyPair
from hyphal.storage.base import Storage

log = logging.getLogger("hyphal.groups")

MAX_NAME_BYTES = 1024
HASH_SIZE = 32
MAX_SIZE = 2**63 - 1

_NAME_LEN = struct.Struct("<H")
_PUT_FIXED = struct.Struct("<32sQQB")  # hash, size, mtime in ms, flags
_FLAG_PRIVATE = 0x01
_KNOWN_FLAGS = _FLAG_PRIVATE


class OpKind(IntEnum):
    PUT = 1
    DELETE = 2


def check_name(name: str) -> str:
    """``name`` if it is a safe repo name, else :class:`InvalidInput`.

    A name is a relative ``/``-separated path in Unicode NFC: no empty, ``.``
    or ``..`` component, no leading ``/``, no backslash or control character,
    at most 1024 bytes of UTF-8.
    """
    if not name:
        raise InvalidInput("a repo name cannot be empty")
    if unicodedata.normalize("NFC", name) != name:
        raise InvalidInput("a repo name must be in Unicode NFC form")
    if len(name.encode("utf-8", "surrogatepass")) > MAX_NAME_BYTES:
        raise InvalidInput(f"a repo name is at most {MAX_NAME_BYTES} bytes of UTF-8")
    if any(ord(c) < 0x20 or c in "\x7f\\" for c in name):
        raise InvalidInput("a repo name cannot hold control characters or backslashes")
    if any(part in ("", ".", "..") for part in name.split("/")):
        raise InvalidInput("a repo name is a relative path without empty, '.' or '..' parts")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInput("a repo name must be valid Unicode (no lone surrogates)") from None
    return name


@dataclass(frozen=True, slots=True)
class Put:
    """``name`` now holds the blob ``blob_hash`` of ``size`` bytes.

    For a private blob, ``key`` is the blob's content key wrapped under the
    group's content key (:meth:`GroupKeys.wrap_blob_key`) and ``blob_hash``
    the hash of its ciphertext, which is what providers and backups store
    and serve without being able to read it.
    """

    name: str
    blob_hash: bytes
    size: int
    mtime_ms: int = 0
    key: bytes | None = None

    def __post_init__(self) -> None:
        check_name(self.name)
        if len(self.blob_hash) != HASH_SIZE:
            raise InvalidInput(f"a blob hash is {HASH_SIZE} bytes")
        if not (0 <= self.size <= MAX_SIZE and 0 <= self.mtime_ms <= MAX_SIZE):
            raise InvalidInput("size and mtime must be in [0, 2^63)")
        if self.key is not None and len(self.key) != WRAPPED_KEY_SIZE:
            raise InvalidInput(f"a wrapped blob key is {WRAPPED_KEY_SIZE} bytes")

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")
        flags = _FLAG_PRIVATE if self.key is not None else 0
        fixed = _PUT_FIXED.pack(self.blob_hash, self.size, self.mtime_ms, flags)
        return b"".join((bytes((OpKind.PUT,)), _NAME_LEN.pack(len(name)), name, fixed, self.key or b""))


@dataclass(frozen=True, slots=True)
class Delete:
    """``name`` no longer holds anything."""

    name: str

    def __post_init__(self) -> None:
        check_name(self.name)

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")
        return bytes((OpKind.DELETE,)) + _NAME_LEN.pack(len(name)) + name


Op: TypeAlias = Put | Delete


def decode_op(data: Buffer) -> Op:
    """One repo block; :class:`DecodeError` for anything malformed, unsafe or with trailing bytes."""
    raw = bytes(data)
    if len(raw) < 1 + _NAME_LEN.size:
        raise DecodeError("repo operation is truncated")
    kind = raw[0]
    (name_len,) = _NAME_LEN.unpack_from(raw, 1)
    if name_len > MAX_NAME_BYTES:
        raise DecodeError(f"repo name of {name_len} bytes exceeds {MAX_NAME_BYTES}")
    pos = 1 + _NAME_LEN.size
    name_bytes = raw[pos : pos + name_len]
    if len(name_bytes) != name_len:
        raise DecodeError("repo operation is truncated")
    pos += name_len
    try:
        name = name_bytes.decode("utf-8")
        if kind == OpKind.DELETE:
            op: Op = Delete(name)
        elif kind == OpKind.PUT:
            if len(raw) < pos + _PUT_FIXED.size:
                raise DecodeError("repo operation is truncated")
            blob_hash, size, mtime_ms, flags = _PUT_FIXED.unpack_from(raw, pos)
            pos += _PUT_FIXED.size
            if flags & ~_KNOWN_FLAGS:
                raise DecodeError(f"unknown repo operation flags {flags:#x}")
            key = None
            if flags & _FLAG_PRIVATE:
                key = raw[pos : pos + WRAPPED_KEY_SIZE]
                if len(key) != WRAPPED_KEY_SIZE:
                    raise DecodeError("repo operation is truncated")
                pos += WRAPPED_KEY_SIZE
            op = Put(name, blob_hash, size, mtime_ms, key)
        else:
            raise DecodeError(f"unknown repo operation {kind}")
    except UnicodeDecodeError:
        raise DecodeError("repo name is not UTF-8") from None
    except InvalidInput as exc:
        raise DecodeError(f"bad repo operation: {exc}") from None
    if pos != len(raw):
        raise DecodeError("trailing bytes after repo operation")
    return op


@dataclass(frozen=True, slots=True)
class Entry:
    """What a name holds in a collection, and which block of the repo last set it."""

    blob_hash: bytes
    size: int
    mtime_ms: int
    key: bytes | None
    index: int


@dataclass(slots=True)
class Collection(Mapping[str, Entry]):
    """A repo's state: the name → :class:`Entry` map its operations spell, up to ``length``."""

    entries: dict[str, Entry] = field(default_factory=dict)
    length: int = 0
    """Operations applied so far (the repo feed's length they reflect)."""

    def apply(self, op: Op) -> None:
        """Apply the next operation (block ``self.length``)."""
        if isinstance(op, Put):
            self.entries[op.name] = Entry(op.blob_hash, op.size, op.mtime_ms, op.key, self.length)
        else:
            self.entries.pop(op.name, None)
        self.length += 1

    def apply_blocks(self, blocks: Iterable[Buffer]) -> None:
        """Decode and apply consecutive blocks, starting at block ``self.length``."""
        for block in blocks:
            self.apply(decode_op(block))

    def __getitem__(self, name: str) -> Entry:
        return self.entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self.entries))

    def __len__(self) -> int:
        return len(self.entries)

    def total_size(self) -> int:
        return sum(entry.size for entry in self.entries.values())


REPO_LABEL = b"hyphal repo"
WRITER_CONTEXT = "hyphal 2026-11 group repo writer"


def writer_keypair(device: KeyPair, keys: GroupKeys) -> KeyPair:
    """The device's repo writer key in one group.

    Derived from the device seed and the group key, so a restart finds it
    again without storing anything, each group gets its own, and the device's
    identity key never signs a feed.
    """
    return KeyPair(derive_key(WRITER_CONTEXT, device.seed + keys.group_key))


def repo_manifest(writer: bytes) -> Manifest:
    """The manifest of the repo feed ``writer`` signs: 1-of-1, labelled ``"hyphal repo"``."""
    return Manifest.single(writer, REPO_LABEL)


class Repo:
    """A member's data repo: an encrypted feed of operations, and the collection it spells.

    Blocks are sealed under the group's repo read secret (§14.3), so relays
    and backup servers hold ciphertext. :attr:`collection` follows the feed:
    it applies every block that is here and contiguous from the start, as
    local appends and verified downloads arrive.
    """

    def __init__(self, feed: Feed) -> None:
        if not feed.can_decrypt and feed.encrypted:
            raise InvalidInput("a repo is read with the group's read secret")
        self.feed = feed
        self.collection = Collection()
        self.bad_block: int | None = None
        """The first block that did not decode, if any: the collection stops before it."""
        self.applied: Notifier[tuple[int, Op]] = Notifier()
        """Each operation as the collection applies it, with its index in the feed."""
        self._unsubscribe = feed.on_change(lambda _: self.refresh())
        self.refresh()

    @classmethod
    def open_own(cls, storage: Storage, device: KeyPair, keys: GroupKeys) -> Repo:
        """This device's repo in the group, created on first use."""
        writer = writer_keypair(device, keys)
        key = repo_manifest(writer.public_key).key
        if storage.load_feed(key) is None:
            feed = Feed.create(
                storage, writer, encrypted=True, label=REPO_LABEL, read_secret=keys.read_secret
            )
        else:
            feed = Feed.open(storage, key, keypair=writer, read_secret=keys.read_secret)
        return cls(feed)

    @classmethod
    def follow(cls, storage: Storage, writer: bytes, keys: GroupKeys) -> Repo:
        """Another member's repo (read-only), by its writer's public key (from its advert)."""
        manifest = repo_manifest(writer)
        return cls(Feed.open(storage, manifest.key, manifest=manifest, read_secret=keys.read_secret))

    @property
    def key(self) -> bytes:
        return self.feed.key

    def put(self, name: str, blob_hash: bytes, size: int, mtime_ms: int = 0, key: bytes | None = None) -> int:
        """Record that ``name`` holds a blob; returns the operation's index in the feed."""
        return self.feed.append(Put(name, blob_hash, size, mtime_ms, key).encode()) - 1

    def delete(self, name: str) -> int:
        """Record that ``name`` is gone; :class:`InvalidInput` if it holds nothing now."""
        if name not in self.collection.entries:
            raise InvalidInput("no such name in this repo")
        return self.feed.append(Delete(name).encode()) - 1

    def refresh(self) -> None:
        """Apply every block that is here and follows the collection's length."""
        feed, collection = self.feed, self.collection
        while self.bad_block is None and collection.length < feed.length and feed.has(collection.length):
            index = collection.length
            try:
                op = decode_op(feed.get_nowait(index))
            except DecodeError:
                # Signed by the member yet malformed: a bug or a hostile member. Stop here,
                # loudly, instead of skipping an operation the rest may depend on.
                self.bad_block = collection.length
                log.warning("repo %s: block %d is not a repo operation", feed.key.hex()[:16], self.bad_block)
                return
            collection.apply(op)
            self.applied.notify((index, op))

    def close(self) -> None:
        self._unsubscribe()


__all__ = [
    "MAX_NAME_BYTES",
    "Collection",
    "Delete",
    "Entry",
    "Op",
    "OpKind",
    "Put",
    "Repo",
    "check_name",
    "decode_op",
    "repo_manifest",
    "writer_keypair",
]
