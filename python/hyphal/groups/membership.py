"""A group's membership log (sans-I/O): signed entries, and the writers they add up to.

Who may write in a group is decided by a log every device verifies back to
the origin (docs/PROTOCOL.md §17.1). Its entries:

- ``GENESIS``: signed by the *group key* (whose seed only the device that
  created the group holds), naming the founding writers, the origin first;
- ``APPROVE``: an authorised device makes another device a writer;
- ``REMOVE``: an authorised device removes a device (a writer, or a pending
  one), recording how many blocks of its repo stay valid.

The log is a grow-only *set* of entries, not a sequence: each entry names
the ids (BLAKE3 of its bytes) of the entries its author had seen last (its
parents), so the set forms a DAG rooted in the genesis. Replicas exchange
entries in any order, any number of times; an entry whose parents are not
all here waits (:attr:`MembershipLog.pending`); a duplicate changes nothing.
Membership is a pure function of the set (:func:`replay`), so every device
that holds the same entries computes the same writers, whatever order they
came in. That function is the documented deterministic rule for concurrent
changes:

1. Replay the DAG in a topological order. Among entries ready at once (all
   parents replayed), take first the one whose author is the most senior
   writer *now* (the origin is 0, then writers in the order they were
   approved); ties (one author) by entry id.
2. An entry counts only if its author is a writer at that point of the replay.
3. A removed device stays removed: approving it again does nothing (a
   device that should come back pairs again with a new key).
4. A removal that would leave no writer does nothing.

So when two devices remove each other at once, the more senior one's
removal comes first and the other's no longer counts: the senior stays. When
one device approves C while another removes the approver, whichever of the
two authors is more senior acts first: if the remover, the approval no
longer counts; if the approver, C stays a writer. Entries written after a
removal by the removed device count nowhere.

Acceptance is structural and order-free too: an entry is kept only if its
signature verifies and its author is the group key (a genesis) or is made a
writer by some entry among its ancestors; anything else is refused with a
typed error (a forged approval; a stranger's entry), and nothing changes.
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum

from typing_extensions import Buffer

from hyphal.codec import Reader, Writer
from hyphal.errors import DecodeError, HyphalError, InvalidInput, Unauthorized
from hyphal.hashing import blake3, derive_key
from hyphal.signing import PUBLIC_KEY_SIZE, SIGNATURE_SIZE, KeyPair, namespaced_message, require_signature

ENTRY_VERSION = 1
ENTRY_NAMESPACE: bytes = derive_key("hyphal 2026-12 membership entry signature", b"")
MAX_PARENTS = 32
MAX_FOUNDERS = 64
MAX_DEVICE_NAME = 64
MAX_ENTRY_SIZE = 2 + 32 + 32 + 1 + 32 * MAX_PARENTS + 1 + 32 * MAX_FOUNDERS + SIGNATURE_SIZE
MAX_ENTRIES = 1024
"""Entries one log holds: a person's devices, approved and removed over years, fit many times over."""
MAX_PENDING = 256
"""Entries held while their parents are missing; beyond it the oldest wait is dropped (it comes again)."""
ID_SIZE = 32
_REMOVE_FIXED = struct.Struct("<32sQ")


class EntryKind(IntEnum):
    GENESIS = 1
    APPROVE = 2
    REMOVE = 3


@dataclass(frozen=True, slots=True)
class Entry:
    """One signed membership log entry (§17.1). Build with :meth:`sign`, read with :func:`decode_entry`."""

    kind: EntryKind
    group_key: bytes
    author: bytes
    parents: tuple[bytes, ...]
    device: bytes = b""
    """APPROVE/REMOVE: the device concerned."""
    name: str = ""
    """APPROVE: the device's name (``"Firefox on Ubuntu 64-bit"``)."""
    repo_length: int = 0
    """REMOVE: blocks of the removed device's repo that stay valid (its length as the remover saw it)."""
    founders: tuple[bytes, ...] = ()
    """GENESIS: the founding writers, the origin device first."""
    signature: bytes = field(default=b"", repr=False)

    def signed_part(self) -> bytes:
        w = Writer().u8(ENTRY_VERSION, "version").u8(self.kind, "kind")
        w.fixed(self.group_key, 32, "group key").fixed(self.author, 32, "author")
        if len(self.parents) > MAX_PARENTS:
            raise InvalidInput(f"an entry names at most {MAX_PARENTS} parents")
        w.u8(len(self.parents), "parent count")
        for parent in self.parents:
            w.fixed(parent, ID_SIZE, "parent id")
        if self.kind == EntryKind.GENESIS:
            if not 1 <= len(self.founders) <= MAX_FOUNDERS:
                raise InvalidInput(f"a genesis names 1 to {MAX_FOUNDERS} founders")
            w.u8(len(self.founders), "founder count")
            for founder in self.founders:
                w.fixed(founder, PUBLIC_KEY_SIZE, "founder")
        elif self.kind == EntryKind.APPROVE:
            w.fixed(self.device, PUBLIC_KEY_SIZE, "device").bytes8(
                self.name.encode("utf-8"), MAX_DEVICE_NAME, "device name"
            )
        else:
            w.pack(_REMOVE_FIXED, "device and repo length", self.device, self.repo_length)
        return w.to_bytes()

    def encode(self) -> bytes:
        return self.signed_part() + self.signature

    @property
    def id(self) -> bytes:
        """BLAKE3 of the whole entry, signature included: what children name as a parent."""
        return blake3(self.encode())

    @classmethod
    def sign(
        cls,
        keypair: KeyPair,
        kind: EntryKind,
        group_key: bytes,
        parents: Iterable[bytes],
        *,
        device: bytes = b"",
        name: str = "",
        repo_length: int = 0,
        founders: tuple[bytes, ...] = (),
    ) -> Entry:
        unsigned = cls(
            kind, group_key, keypair.public_key, tuple(sorted(parents)), device, name, repo_length, founders
        )
        signature = keypair.sign(namespaced_message(ENTRY_NAMESPACE, unsigned.signed_part()))
        return dataclasses.replace(unsigned, signature=signature)

    def verify(self) -> None:
        """:class:`SignatureError` unless the author signed this entry."""
        require_signature(
            self.author, namespaced_message(ENTRY_NAMESPACE, self.signed_part()), self.signature
        )


def decode_entry(data: Buffer) -> Entry:
    """One entry's structure (its signature is checked by :meth:`MembershipLog.add`); :class:`DecodeError`
    for anything malformed, unknown or with trailing bytes, so every entry has one encoding."""
    raw = bytes(data)
    if len(raw) > MAX_ENTRY_SIZE:
        raise DecodeError(f"a membership entry is at most {MAX_ENTRY_SIZE} bytes")
    r = Reader(raw, "membership entry")
    version = r.u8("version")
    if version != ENTRY_VERSION:
        raise DecodeError(f"membership entry version {version} is not supported")
    try:
        kind = EntryKind(r.u8("kind"))
    except ValueError:
        raise DecodeError("unknown membership entry kind") from None
    group_key, author = r.take(32, "group key"), r.take(32, "author")
    count = r.u8("parent count")
    if count > MAX_PARENTS:
        raise DecodeError(f"an entry names at most {MAX_PARENTS} parents")
    parents = tuple(r.take(ID_SIZE, "parent id") for _ in range(count))
    if list(parents) != sorted(set(parents)):
        raise DecodeError("an entry's parents are sorted and distinct")
    device, name, repo_length = b"", "", 0
    founders: tuple[bytes, ...] = ()
    if kind != EntryKind.GENESIS and not parents:
        raise DecodeError("every entry but the genesis names its parents")
    if kind == EntryKind.GENESIS:
        founders = tuple(r.take(32, "founder") for _ in range(r.u8("founder count")))
        if not founders or len(set(founders)) != len(founders) or count:
            raise DecodeError("a genesis has no parents and names distinct founders, at least one")
    elif kind == EntryKind.APPROVE:
        device = r.take(32, "device")
        try:
            name = r.bytes8(MAX_DEVICE_NAME, "device name").decode("utf-8")
        except UnicodeDecodeError:
            raise DecodeError("a device name is UTF-8") from None
    else:
        device, repo_length = r.unpack(_REMOVE_FIXED, "device and repo length")
    signature = r.take(SIGNATURE_SIZE, "signature")
    r.expect_end()
    return Entry(kind, group_key, author, parents, device, name, repo_length, founders, signature)


@dataclass(frozen=True, slots=True)
class AuthorisedDevice:
    """A writer as the replay leaves it."""

    device: bytes
    name: str
    seniority: int
    """0 for the origin, then founders and approved devices in the replay's order."""
    approved_by: bytes | None
    """The device whose APPROVE counted; ``None`` for founders."""


@dataclass(frozen=True, slots=True)
class Removal:
    device: bytes
    by: bytes
    repo_length: int
    """Blocks of the device's repo that stay valid: its writes before the removal."""


@dataclass(frozen=True, slots=True)
class MembershipState:
    """The membership a set of entries adds up to (:func:`replay`)."""

    origin: bytes | None = None
    """The origin device; ``None`` while there is no genesis (an open group: every member writes)."""
    writers: dict[bytes, AuthorisedDevice] = field(default_factory=dict)
    removed: dict[bytes, Removal] = field(default_factory=dict)
    void: frozenset[bytes] = frozenset()
    """Ids of entries kept in the log that do not count (their author was removed before them)."""

    @property
    def active(self) -> bool:
        """The group has a genesis: only writers' repos count."""
        return self.origin is not None

    def is_writer(self, device: bytes) -> bool:
        return not self.active or device in self.writers

    def repo_limit(self, device: bytes) -> int | None:
        """How many blocks of ``device``'s repo count: all (``None``) for a writer or in an open
        group, those before its removal for a removed device, none for a device never approved."""
        if not self.active or device in self.writers:
            return None
        removal = self.removed.get(device)
        return removal.repo_length if removal is not None else 0


def replay(entries: dict[bytes, Entry], group_key: bytes) -> MembershipState:
    """The rule of this module's docstring, over a set of accepted entries (every parent present)."""
    geneses = sorted(i for i, e in entries.items() if e.kind == EntryKind.GENESIS and e.author == group_key)
    if not geneses:
        return MembershipState()
    children: dict[bytes, list[bytes]] = {i: [] for i in entries}
    waiting = {i: len(e.parents) for i, e in entries.items()}
    for i, e in entries.items():
        for parent in e.parents:
            children[parent].append(i)
    ready = {i for i, n in waiting.items() if n == 0}
    writers: dict[bytes, AuthorisedDevice] = {}
    removed: dict[bytes, Removal] = {}
    void: set[bytes] = set()
    origin: bytes | None = None
    seniority = 0
    never = len(entries) + MAX_FOUNDERS + 1

    def rank(entry_id: bytes) -> tuple[int, bytes]:
        author = entries[entry_id].author
        held = writers.get(author)
        return (-1 if author == group_key else held.seniority if held is not None else never, entry_id)

    while ready:
        entry_id = min(ready, key=rank)
        ready.discard(entry_id)
        for child in children[entry_id]:
            waiting[child] -= 1
            if waiting[child] == 0:
                ready.add(child)
        entry = entries[entry_id]
        if entry.kind == EntryKind.GENESIS:
            if entry_id != geneses[0] or origin is not None:
                void.add(entry_id)
                continue
            origin = entry.founders[0]
            for founder in entry.founders:
                writers[founder] = AuthorisedDevice(founder, "", seniority, None)
                seniority += 1
            continue
        if entry.author not in writers:
            void.add(entry_id)
        elif entry.kind == EntryKind.APPROVE:
            if entry.device not in writers and entry.device not in removed:
                writers[entry.device] = AuthorisedDevice(entry.device, entry.name, seniority, entry.author)
                seniority += 1
        elif entry.device not in removed:
            was_writer = entry.device in writers
            if was_writer and len(writers) == 1:
                void.add(entry_id)  # the last writer stays
                continue
            writers.pop(entry.device, None)
            length = entry.repo_length if was_writer else 0
            removed[entry.device] = Removal(entry.device, entry.author, length)
    return MembershipState(origin, writers, removed, frozenset(void))


class MembershipLog:
    """One device's copy of a group's membership log: the accepted entries, those waiting for
    their parents, and the :class:`MembershipState` they add up to."""

    def __init__(self, group_key: bytes) -> None:
        if len(group_key) != 32:
            raise InvalidInput("a group key is 32 bytes")
        self.group_key = group_key
        self.entries: dict[bytes, Entry] = {}
        self.pending: dict[bytes, Entry] = {}
        self._grants: dict[bytes, set[bytes]] = {}
        """Device → ids of accepted entries that make it a writer (genesis or APPROVE)."""
        self._ancestors: dict[bytes, frozenset[bytes]] = {}
        self.state = MembershipState()

    # -- taking entries ----------------------------------------------------------------------

    def add(self, entry: Entry | Buffer) -> list[Entry]:
        """Take one entry from anyone, in any order; returns the entries newly accepted (this one,
        and any waiting for it). A duplicate returns ``[]``; an entry whose parents are missing
        waits. Raises :class:`DecodeError`, :class:`SignatureError` or :class:`Unauthorized`
        (an author no ancestor makes a writer, another group's entry), keeping nothing."""
        entry = entry if isinstance(entry, Entry) else decode_entry(entry)
        entry_id = entry.id
        if entry_id in self.entries or entry_id in self.pending:
            return []
        if entry.group_key != self.group_key:
            raise Unauthorized("a membership entry of another group")
        if entry.kind == EntryKind.GENESIS and entry.author != self.group_key:
            raise Unauthorized("a genesis not signed by the group key")
        entry.verify()
        if len(self.entries) >= MAX_ENTRIES:
            raise Unauthorized(f"the membership log is full ({MAX_ENTRIES} entries)")
        if any(p not in self.entries for p in entry.parents):
            if len(self.pending) >= MAX_PENDING:
                self.pending.pop(next(iter(self.pending)))
            self.pending[entry_id] = entry
            return []
        accepted = [self._accept(entry_id, entry)]
        accepted += self._resolve_pending()
        self.state = replay(self.entries, self.group_key)
        return accepted

    def add_many(self, entries: Iterable[Entry | Buffer]) -> list[Entry]:
        """:meth:`add` for each; entries that fail are skipped (for a sealed file of our own)."""
        out: list[Entry] = []
        for entry in entries:
            try:
                out += self.add(entry)
            except HyphalError:
                continue
        return out

    def _accept(self, entry_id: bytes, entry: Entry) -> Entry:
        ancestors = frozenset({entry_id}).union(*(self._ancestors[p] for p in entry.parents))
        if entry.kind != EntryKind.GENESIS and not (self._grants.get(entry.author, set()) & ancestors):
            raise Unauthorized(
                f"membership entry by {entry.author.hex()[:16]}, whom no earlier entry made a writer "
                "(a forged or unsigned approval)"
            )
        self.entries[entry_id] = entry
        self._ancestors[entry_id] = ancestors
        for device in entry.founders if entry.kind == EntryKind.GENESIS else ():
            self._grants.setdefault(device, set()).add(entry_id)
        if entry.kind == EntryKind.APPROVE:
            self._grants.setdefault(entry.device, set()).add(entry_id)
        return entry

    def _resolve_pending(self) -> list[Entry]:
        accepted: list[Entry] = []
        progress = True
        while progress:
            progress = False
            for entry_id, entry in list(self.pending.items()):
                if all(p in self.entries for p in entry.parents):
                    del self.pending[entry_id]
                    progress = True
                    try:
                        accepted.append(self._accept(entry_id, entry))
                    except Unauthorized:
                        continue  # refused as if it had arrived last; its parents were all here
        return accepted

    # -- making entries ----------------------------------------------------------------------

    def heads(self) -> tuple[bytes, ...]:
        """Ids of accepted entries no other accepted entry names as a parent: a new entry's parents."""
        named = {p for e in self.entries.values() for p in e.parents}
        return tuple(sorted(i for i in self.entries if i not in named))[:MAX_PARENTS]

    def genesis(self, group: KeyPair, founders: Iterable[bytes]) -> Entry:
        """Start the log (the origin, which holds the group key's seed): ``founders`` write, origin first."""
        if group.public_key != self.group_key:
            raise InvalidInput("the genesis is signed by this group's key")
        if self.state.active:
            raise InvalidInput("this group's membership log has begun already")
        entry = Entry.sign(
            group, EntryKind.GENESIS, self.group_key, (), founders=tuple(dict.fromkeys(founders))
        )
        self.add(entry)
        return entry

    def approve(self, author: KeyPair, device: bytes, name: str) -> Entry:
        """``author`` (a writer) makes ``device`` a writer."""
        self._require_writer(author.public_key, "approve a device")
        if device in self.state.removed:
            raise InvalidInput("that device was removed from this group; it pairs again with a new key")
        short = name.encode("utf-8")[:MAX_DEVICE_NAME].decode("utf-8", "ignore")
        entry = Entry.sign(author, EntryKind.APPROVE, self.group_key, self.heads(), device=device, name=short)
        self.add(entry)
        return entry

    def remove(self, author: KeyPair, device: bytes, repo_length: int) -> Entry:
        """``author`` (a writer) removes ``device``; its first ``repo_length`` repo blocks stay valid."""
        self._require_writer(author.public_key, "remove a device")
        if device in self.state.removed:
            raise InvalidInput("that device is removed already")
        if set(self.state.writers) == {device}:
            raise InvalidInput("that device is the group's last writer")
        entry = Entry.sign(
            author, EntryKind.REMOVE, self.group_key, self.heads(), device=device, repo_length=repo_length
        )
        self.add(entry)
        return entry

    def _require_writer(self, device: bytes, what: str) -> None:
        if not self.state.active:
            raise InvalidInput("this group has no membership log yet (the origin starts it by pairing)")
        if device not in self.state.writers:
            raise Unauthorized(f"this device may not {what}: it is not an authorised writer of the group")

    def encoded(self) -> list[bytes]:
        """Every accepted entry, parents before children: what to save and to send a peer."""
        order = sorted(self.entries, key=lambda i: (len(self._ancestors[i]), i))
        return [self.entries[i].encode() for i in order]


__all__ = [
    "ENTRY_NAMESPACE",
    "MAX_ENTRIES",
    "MAX_ENTRY_SIZE",
    "AuthorisedDevice",
    "Entry",
    "EntryKind",
    "MembershipLog",
    "MembershipState",
    "Removal",
    "decode_entry",
    "replay",
]
