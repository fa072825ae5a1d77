"""A member's data repo: a feed of collection operations, and the collection it spells.

Each member device of a group writes its own repo feed. Block ``i`` of the
feed is one :class:`~hyphal.groups.messages.Put` (name → blob) or
:class:`~hyphal.groups.messages.Delete` (name); replaying the blocks in order
gives the repo's current :class:`Collection`. The operations and their byte
layouts are in :mod:`hyphal.groups.messages` (docs/PROTOCOL.md §14.1), whose
name check means a peer's repo can never name a file outside the directory
it is exported to.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from typing_extensions import Buffer

from hyphal.errors import DecodeError, InvalidInput
from hyphal.feed import Feed, Manifest
from hyphal.groups.keys import GroupKeys
from hyphal.groups.messages import Delete, Op, Put, decode_op
from hyphal.hashing import derive_key
from hyphal.notifier import Notifier
from hyphal.signing import KeyPair
from hyphal.storage.base import Storage

log = logging.getLogger("hyphal.groups")


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
        self.limit: int | None = None
        """Blocks that count (§17.1): ``None`` all, else the first ``limit`` (a device the
        membership log never approved counts none; a removed one, those before its removal)."""
        self._refused_logged = -1
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

    def set_limit(self, limit: int | None) -> None:
        """Count only the first ``limit`` blocks (``None``: all), rebuilding the collection if it
        already holds more; blocks past the limit stay in the feed, refused."""
        if limit == self.limit:
            return
        self.limit = limit
        if limit is not None and self.collection.length > limit:
            self.collection = Collection()
            self.bad_block = None
        self.refresh()

    def refresh(self) -> None:
        """Apply every block that is here and follows the collection's length (up to the limit)."""
        feed, collection = self.feed, self.collection
        if self.limit is not None and feed.length > self.limit and self._refused_logged < feed.length:
            self._refused_logged = feed.length
            log.warning(
                "repo %s: refused blocks %d..%d: its device is not a writer of the group (§17.1)",
                feed.key.hex()[:16],
                self.limit,
                feed.length - 1,
            )
        while (
            self.bad_block is None
            and collection.length < feed.length
            and (self.limit is None or collection.length < self.limit)
            and feed.has(collection.length)
        ):
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


__all__ = ["Collection", "Entry", "Repo", "repo_manifest", "writer_keypair"]
