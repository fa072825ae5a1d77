"""What a group tells its callers: files in the group view, changes to watch, sync progress."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

from hyphal.groups.repo import Entry


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file in one member's repo."""

    name: str
    member: bytes
    """The device key of the member whose repo holds it."""
    member_name: str
    entry: Entry

    @property
    def blob_hash(self) -> bytes:
        return self.entry.blob_hash

    @property
    def size(self) -> int:
        return self.entry.size

    @property
    def private(self) -> bool:
        return self.entry.key is not None


@dataclass(frozen=True, slots=True)
class MemberJoined:
    member: bytes
    name: str
    backup: bool


@dataclass(frozen=True, slots=True)
class MemberLeft:
    member: bytes
    name: str


@dataclass(frozen=True, slots=True)
class RepoAdded:
    member: bytes
    name: str
    repo_key: bytes


@dataclass(frozen=True, slots=True)
class FileAdded:
    file: FileInfo


@dataclass(frozen=True, slots=True)
class FileRemoved:
    member: bytes
    member_name: str
    name: str


@dataclass(frozen=True, slots=True)
class DeviceApproved:
    """The membership log (§17.1) made ``device`` a writer (``name`` as its approval gave it)."""

    device: bytes
    name: str


@dataclass(frozen=True, slots=True)
class DeviceRemoved:
    """The membership log removed ``device``; its first ``repo_length`` repo blocks stay valid."""

    device: bytes
    repo_length: int


@dataclass(frozen=True, slots=True)
class PairingRequested:
    """A device asks to be approved as a writer (§17.4); both screens show ``code``."""

    request: str
    device: bytes
    name: str
    code: str


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message on the group's ephemeral channel (:mod:`hyphal.groups.channel`), opened and verified."""

    id: bytes
    sender: bytes
    """The device key that signed it."""
    sender_name: str
    """The sender's name in the group ("" if it has no advert here yet)."""
    topic: str
    body: bytes
    sent_ms: int
    via: bytes
    """The device key of the peer that handed it over: the sender (direct) or a relay."""

    @property
    def direct(self) -> bool:
        return self.via == self.sender


GroupEvent: TypeAlias = (
    MemberJoined
    | MemberLeft
    | RepoAdded
    | FileAdded
    | FileRemoved
    | MessageReceived
    | DeviceApproved
    | DeviceRemoved
    | PairingRequested
)


@dataclass(frozen=True, slots=True)
class SyncProgress:
    """Where a :meth:`~hyphal.groups.group.Group.sync_all` stands."""

    phase: str
    """``"members"``, ``"repos"``, ``"blobs"`` or ``"done"``."""
    files_done: int = 0
    files_total: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    current: str | None = None
    """The file being fetched, if any."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    members: int
    repos: int
    files: int
    bytes_fetched: int
    missing: tuple[str, ...] = ()
    """Files no reachable member or backup could serve (named ``member/name``)."""
    files_fetched: int = 0
    """Files whose blob this sync fetched (``files`` counts every file it looked at)."""
    reached: tuple[str, ...] = ()
    """Names of the members (and backups) connected when the sync fetched."""
    unreachable: tuple[str, ...] = ()
    """Members this device could not reach, each with why (:meth:`Group.unreachable`)."""

    @property
    def fetched_nothing_known(self) -> bool:
        """Nothing came, though something was known to exist: other members (none reached),
        or files listed (none fetched). A sync that found everything here already is fine."""
        if self.files_fetched:
            return False
        return bool(self.missing) or (bool(self.unreachable) and not self.reached)


__all__ = [
    "DeviceApproved",
    "DeviceRemoved",
    "FileAdded",
    "FileInfo",
    "FileRemoved",
    "GroupEvent",
    "MemberJoined",
    "MemberLeft",
    "MessageReceived",
    "PairingRequested",
    "RepoAdded",
    "SyncProgress",
    "SyncResult",
]
