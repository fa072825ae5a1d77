"""Asking a backup server to hold a group: the ``hyphal/backup/1`` request (sans-I/O codec).

A member opens the channel (id: the group's discovery key) on a connection
to the backup server and sends ``REQUEST`` with the group's grant (§14.3)
and name. The server answers ``OK`` if the member's device key (from the
connection's handshake) is one it was told to serve, else ``ERROR``.
Layout in docs/PROTOCOL.md §14.8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from typing_extensions import Buffer

from hyphal.errors import DecodeError
from hyphal.groups.keys import GRANT_SIZE

PROTOCOL = "hyphal/backup/1"
MAX_NAME = 200
MAX_REASON = 200
MAX_MESSAGE = 1 + GRANT_SIZE + 1 + MAX_NAME * 4


class BackupMessage(IntEnum):
    REQUEST = 1
    OK = 2
    ERROR = 3


@dataclass(frozen=True, slots=True)
class BackupRequest:
    grant: bytes = field(repr=False)
    name: str

    def encode(self) -> bytes:
        name = self.name.encode("utf-8")[:MAX_NAME]
        return bytes((BackupMessage.REQUEST,)) + self.grant + bytes((len(name),)) + name


@dataclass(frozen=True, slots=True)
class BackupReply:
    error: str | None = None
    """``None``: the server holds the group now."""

    def encode(self) -> bytes:
        if self.error is None:
            return bytes((BackupMessage.OK,))
        return bytes((BackupMessage.ERROR,)) + self.error.encode("utf-8")[:MAX_REASON]


def decode_request(data: Buffer) -> BackupRequest:
    raw = bytes(data)
    if len(raw) < 2 + GRANT_SIZE or raw[0] != BackupMessage.REQUEST:
        raise DecodeError("not a backup request")
    grant, rest = raw[1 : 1 + GRANT_SIZE], raw[1 + GRANT_SIZE :]
    size = rest[0]
    if size > MAX_NAME or len(rest) != 1 + size:
        raise DecodeError("backup request: bad group name length")
    try:
        return BackupRequest(grant, rest[1:].decode("utf-8"))
    except UnicodeDecodeError:
        raise DecodeError("backup request: group name is not UTF-8") from None


def decode_reply(data: Buffer) -> BackupReply:
    raw = bytes(data)
    if raw == bytes((BackupMessage.OK,)):
        return BackupReply()
    if raw[:1] == bytes((BackupMessage.ERROR,)) and len(raw) <= 1 + MAX_REASON:
        return BackupReply(raw[1:].decode("utf-8", "replace"))
    raise DecodeError("not a backup reply")


__all__ = ["PROTOCOL", "BackupMessage", "BackupReply", "BackupRequest", "decode_reply", "decode_request"]
