"""Every byte layout of the groups' wire, in one place (docs/PROTOCOL.md §14).

- §14.1 repo operations: :class:`Put`, :class:`Delete` (one per repo feed block), :func:`decode_op`;
- §14.4 the sealed body of a member advert: :class:`MemberAdvert`, and its sealing label;
- §14.5 the group channel (``hyphal/group/1``): ``AUTH``, ``ADVERT``, ``SYNCED``, ``ENTRY`` (§17.2);
- §14.6 the group info record's plaintext and label;
- §14.8 backup requests (``hyphal/backup/1``): :class:`BackupRequest`, :class:`BackupReply`.

Every decoder takes bytes from a peer, a feed or the DHT and raises only
:class:`~hyphal.errors.DecodeError` on bad input: truncation, trailing
bytes, unknown kinds or flags, and values outside their limits, so every
message has exactly one encoding. Keys and the sealing around these bodies
are in :mod:`hyphal.groups.keys` (§14.3); the invite URI (§14.2) is text, in
:mod:`hyphal.groups.invite`; the groups file (§14.7) in :mod:`hyphal.groups.state`.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TypeAlias

from typing_extensions import Buffer

from hyphal.codec import Reader
from hyphal.errors import DecodeError, InvalidInput
from hyphal.groups.keys import GRANT_SIZE, WRAPPED_KEY_SIZE
from hyphal.groups.membership import Entry, decode_entry
from hyphal.net.endpoint import parse_endpoint
from hyphal.replication.capability import MAC_SIZE
from hyphal.signed_value import SignedValue

# -- §14.1 repo operations ---------------------------------------------------------------------

MAX_NAME_BYTES = 1024
HASH_SIZE = 32
MAX_SIZE = 2**63 - 1

_PUT_FIXED = struct.Struct("<32sQQB")  # hash, size, mtime in ms, flags
_PUT_PRIVATE = 0x01
_PUT_KNOWN_FLAGS = _PUT_PRIVATE


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
    group's content key (:meth:`GroupKeys.wrap_private`) and ``blob_hash``
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
        flags = _PUT_PRIVATE if self.key is not None else 0
        fixed = _PUT_FIXED.pack(self.blob_hash, self.size, self.mtime_ms, flags)
        return b"".join((bytes((OpKind.PUT,)), len(name).to_bytes(2, "little"), name, fixed, self.key or b""))


@dataclass(frozen=True, slots=True)
class Delete:
    """``name`` no longer holds anything."""

    name: str

    def __post_init__(self) -> None:
        check_name(self.name)

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")
        return bytes((OpKind.DELETE,)) + len(name).to_bytes(2, "little") + name


Op: TypeAlias = Put | Delete


def decode_op(data: Buffer) -> Op:
    """One repo block; :class:`DecodeError` for anything malformed, unsafe or with trailing bytes."""
    r = Reader(bytes(data), "repo operation")
    kind = r.u8("kind")
    name_bytes = r.bytes16(MAX_NAME_BYTES, "name")
    try:
        name = name_bytes.decode("utf-8")
        if kind == OpKind.DELETE:
            op: Op = Delete(name)
        elif kind == OpKind.PUT:
            blob_hash, size, mtime_ms, flags = r.unpack(_PUT_FIXED, "hash, size, mtime and flags")
            if flags & ~_PUT_KNOWN_FLAGS:
                raise DecodeError(f"unknown repo operation flags {flags:#x}")
            key = r.take(WRAPPED_KEY_SIZE, "wrapped key") if flags & _PUT_PRIVATE else None
            op = Put(name, blob_hash, size, mtime_ms, key)
        else:
            raise DecodeError(f"unknown repo operation {kind}")
    except UnicodeDecodeError:
        raise DecodeError("repo name is not UTF-8") from None
    except InvalidInput as exc:
        raise DecodeError(f"bad repo operation: {exc}") from None
    r.expect_end()
    return op


# -- §14.4 member adverts ----------------------------------------------------------------------

ADVERT_VERSION = 1
MAX_MEMBER_NAME = 64
MAX_ADDRESSES = 8
MAX_ADDRESS_LEN = 64
NO_REPO = bytes(32)
"""The repo writer key in a backup server's advert: it has no repo."""
_ADVERT_LEFT = 0x01
_ADVERT_BACKUP = 0x02
_ADVERT_KNOWN_FLAGS = _ADVERT_LEFT | _ADVERT_BACKUP
_ADVERT_FIXED = struct.Struct("<BB32s")  # version, flags, repo writer key


def member_label(member_key: bytes) -> bytes:
    """The sealing label of a member's advert body: binds it to the device that signs it."""
    return b"member " + member_key


@dataclass(frozen=True, slots=True)
class MemberAdvert:
    """What a member device says about itself (the sealed body of its signed value)."""

    name: str
    repo_writer: bytes
    """The public key that signs the member's repo feed (:func:`~hyphal.groups.repo.repo_manifest`);
    all zero (:data:`NO_REPO`) for a backup server, which has no repo."""
    addresses: tuple[str, ...] = ()
    left: bool = False
    backup: bool = False
    """A backup server members authorised, not a person's device."""

    def __post_init__(self) -> None:
        if len(self.repo_writer) != 32:
            raise InvalidInput("a repo writer key is 32 bytes")
        if len(self.name.encode("utf-8", "surrogatepass")) > MAX_MEMBER_NAME:
            raise InvalidInput(f"a member name is at most {MAX_MEMBER_NAME} bytes of UTF-8")
        if len(self.addresses) > MAX_ADDRESSES:
            raise InvalidInput(f"an advert lists at most {MAX_ADDRESSES} addresses")
        for address in self.addresses:
            if len(address.encode("utf-8", "surrogatepass")) > MAX_ADDRESS_LEN:
                raise InvalidInput(f"an address is at most {MAX_ADDRESS_LEN} bytes")
            parse_endpoint(address)  # host:port, or ws://host:port for a WebSocket listener

    def encode(self) -> bytes:
        flags = (_ADVERT_LEFT if self.left else 0) | (_ADVERT_BACKUP if self.backup else 0)
        addresses = [_str8(a) for a in self.addresses]
        return b"".join(
            (
                _ADVERT_FIXED.pack(ADVERT_VERSION, flags, self.repo_writer),
                _str8(self.name),
                bytes((len(addresses),)),
                *addresses,
            )
        )

    @classmethod
    def decode(cls, data: bytes) -> MemberAdvert:
        r = Reader(data, "member advert")
        version, flags, repo_writer = r.unpack(_ADVERT_FIXED, "version, flags and repo writer")
        if version != ADVERT_VERSION:
            raise DecodeError(f"member advert version {version} is not supported")
        if flags & ~_ADVERT_KNOWN_FLAGS:
            raise DecodeError(f"unknown member advert flags {flags:#x}")
        name = _utf8(r.bytes8(255, "name"))
        addresses = tuple(_utf8(r.bytes8(255, "address")) for _ in range(r.u8("address count")))
        r.expect_end()
        try:
            return cls(name, repo_writer, addresses, bool(flags & _ADVERT_LEFT), bool(flags & _ADVERT_BACKUP))
        except InvalidInput as exc:
            raise DecodeError(f"bad member advert: {exc}") from None


def _str8(text: str) -> bytes:
    raw = text.encode("utf-8")
    return bytes((len(raw),)) + raw


def _utf8(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("member advert text is not UTF-8") from None


# -- §14.5 the group channel -------------------------------------------------------------------

MAX_GROUP_MESSAGE = 2048


class GroupMessage(IntEnum):
    AUTH = 1
    ADVERT = 2
    SYNCED = 3
    """Every advert held when the peer's AUTH verified has been sent."""
    ENTRY = 4
    """A membership log entry (§17.1), as signed."""


@dataclass(frozen=True, slots=True)
class GroupAuth:
    """The sender's proof that it holds the group secret (or a backup's grant)."""

    mac: bytes


@dataclass(frozen=True, slots=True)
class GroupAdvert:
    """A member advert (§14.4), as signed."""

    advert: SignedValue


@dataclass(frozen=True, slots=True)
class GroupSynced:
    """The sender has sent every advert it held when the peer's AUTH verified."""


@dataclass(frozen=True, slots=True)
class GroupEntry:
    """A membership log entry (§17.1); its signature and authority are checked by the log."""

    entry: Entry


GroupChannelMessage: TypeAlias = GroupAuth | GroupAdvert | GroupSynced | GroupEntry


def encode_auth(mac: bytes) -> bytes:
    return bytes((GroupMessage.AUTH,)) + mac


def encode_advert(advert: SignedValue) -> bytes:
    return bytes((GroupMessage.ADVERT,)) + advert.encode()


def encode_synced() -> bytes:
    return bytes((GroupMessage.SYNCED,))


def encode_entry(entry: Entry) -> bytes:
    return bytes((GroupMessage.ENTRY,)) + entry.encode()


def decode_group_message(data: Buffer) -> GroupChannelMessage:
    """One group channel message (the advert's structure only: its signature is not checked)."""
    raw = bytes(data)
    if raw[:1] == bytes((GroupMessage.ENTRY,)):
        return GroupEntry(decode_entry(raw[1:]))  # bounded by MAX_ENTRY_SIZE
    if not raw or len(raw) > MAX_GROUP_MESSAGE:
        raise DecodeError(f"group message of {len(raw)} bytes")
    kind, body = raw[0], raw[1:]
    if kind == GroupMessage.AUTH:
        if len(body) != MAC_SIZE:
            raise DecodeError(f"a group AUTH carries a {MAC_SIZE}-byte MAC")
        return GroupAuth(body)
    if kind == GroupMessage.ADVERT:
        return GroupAdvert(SignedValue.decode(body))
    if kind == GroupMessage.SYNCED:
        if body:
            raise DecodeError("trailing bytes after a group SYNCED")
        return GroupSynced()
    raise DecodeError(f"unknown group message {kind}")


# -- §14.6 the group info record ---------------------------------------------------------------

GROUP_INFO_LABEL = b"group info"
"""The sealing label of the group info record the group's creator stores in the DHT."""


def encode_group_info(name: str) -> bytes:
    """The group info record's plaintext: the group's name."""
    return name.encode("utf-8")


def decode_group_info(data: bytes) -> str:
    """The group's name from the group info record's plaintext."""
    try:
        name = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DecodeError("the group info's name is not UTF-8") from None
    if not name or len(name) > 200:
        raise DecodeError("the group info's name is not 1 to 200 characters")
    return name


# -- §14.8 backup requests ---------------------------------------------------------------------

MAX_BACKUP_NAME = 200
MAX_BACKUP_REASON = 200
MAX_BACKUP_MESSAGE = 1 + GRANT_SIZE + 1 + MAX_BACKUP_NAME * 4


class BackupMessage(IntEnum):
    REQUEST = 1
    OK = 2
    ERROR = 3


@dataclass(frozen=True, slots=True)
class BackupRequest:
    grant: bytes = field(repr=False)
    name: str

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")[:MAX_BACKUP_NAME]
        return bytes((BackupMessage.REQUEST,)) + self.grant + bytes((len(name),)) + name


@dataclass(frozen=True, slots=True)
class BackupReply:
    error: str | None = None
    """``None``: the server holds the group now."""

    def encode(self) -> bytes:
        if self.error is None:
            return bytes((BackupMessage.OK,))
        return bytes((BackupMessage.ERROR,)) + self.error.encode("utf-8")[:MAX_BACKUP_REASON]


def decode_request(data: Buffer) -> BackupRequest:
    r = Reader(bytes(data), "backup request")
    if r.u8("kind") != BackupMessage.REQUEST:
        raise DecodeError("not a backup request")
    grant = r.take(GRANT_SIZE, "grant")
    name = r.bytes8(MAX_BACKUP_NAME, "group name")
    r.expect_end()
    try:
        return BackupRequest(grant, name.decode("utf-8"))
    except UnicodeDecodeError:
        raise DecodeError("backup request: group name is not UTF-8") from None


def decode_reply(data: Buffer) -> BackupReply:
    raw = bytes(data)
    if raw == bytes((BackupMessage.OK,)):
        return BackupReply()
    if raw[:1] == bytes((BackupMessage.ERROR,)) and len(raw) <= 1 + MAX_BACKUP_REASON:
        return BackupReply(raw[1:].decode("utf-8", "replace"))
    raise DecodeError("not a backup reply")


__all__ = [
    "ADVERT_VERSION",
    "GROUP_INFO_LABEL",
    "MAX_ADDRESSES",
    "MAX_GROUP_MESSAGE",
    "MAX_MEMBER_NAME",
    "MAX_NAME_BYTES",
    "NO_REPO",
    "BackupMessage",
    "BackupReply",
    "BackupRequest",
    "Delete",
    "GroupAdvert",
    "GroupAuth",
    "GroupChannelMessage",
    "GroupEntry",
    "GroupMessage",
    "GroupSynced",
    "MemberAdvert",
    "Op",
    "OpKind",
    "Put",
    "check_name",
    "decode_group_info",
    "decode_group_message",
    "decode_op",
    "decode_reply",
    "decode_request",
    "encode_advert",
    "encode_auth",
    "encode_entry",
    "encode_group_info",
    "encode_synced",
    "member_label",
]
