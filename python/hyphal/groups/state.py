"""What a node remembers about its groups across restarts: one sealed file, ``groups``.

The file holds group secrets, so it is sealed under a key derived from the
node's identity seed (which a passphrase protects at rest, §13): a copy of
the data dir without the identity reveals nothing. It is rewritten whole,
atomically, on every change; changes are rare (a join, a member's new
advert), and the adverts it keeps let a restarted node reach the members
before the DHT answers. Layout in docs/PROTOCOL.md §14.7.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hyphal.errors import DecodeError
from hyphal.files import read_sealed_list, write_sealed_list
from hyphal.hashing import derive_key
from hyphal.signing import KeyPair

log = logging.getLogger("hyphal.groups")

MAGIC = b"hyphalG1"
FILE_KEY_CONTEXT = "hyphal 2026-11 node groups file"


@dataclass(slots=True)
class GroupRecord:
    """One group as this node holds it."""

    group_key: bytes
    name: str
    member_name: str
    secret: bytes | None = field(default=None, repr=False)
    """The group secret (a member device), or ``None`` for a backup server, which holds ``grant``."""
    grant: bytes | None = field(default=None, repr=False)
    group_seed: bytes | None = field(default=None, repr=False)
    """The group signing key's seed: only on the device that created the group."""
    seq: int = 0
    """The seq of this device's latest advert in the group."""
    left: bool = False
    closed: bool = False
    """Closed on this device: kept (and still a member), but not run until opened again."""
    adverts: list[bytes] = field(default_factory=list)
    """Every member advert held (encoded signed values), tombstones included."""
    peers: list[str] = field(default_factory=list)
    """Addresses from the invite, tried until members' adverts are known."""
    log: list[bytes] = field(default_factory=list)
    """The group's membership log (§17.1): every accepted entry, parents first."""
    restore_repo: bool = False
    """Imported from a device bundle (§17.6): this device's own repo is fetched from members
    before it writes again (a repo started afresh under the same key would fork it)."""
    pair_password: bytes | None = field(default=None, repr=False)
    """The account password's Argon2id hash, on an authorised device that takes password sign-ins (§17.3)."""

    def to_wire(self) -> dict[str, Any]:
        return {
            "group_key": _b64(self.group_key),
            "name": self.name,
            "member_name": self.member_name,
            "secret": _b64(self.secret),
            "grant": _b64(self.grant),
            "group_seed": _b64(self.group_seed),
            "seq": self.seq,
            "left": self.left,
            "closed": self.closed,
            "adverts": [_b64(a) for a in self.adverts],
            "peers": self.peers,
            "log": [_b64(e) for e in self.log],
            "pair_password": _b64(self.pair_password),
            "restore_repo": self.restore_repo,
        }

    @classmethod
    def from_wire(cls, raw: Any) -> GroupRecord:
        try:
            fields = dict(raw)
            for name in ("group_key", "secret", "grant", "group_seed"):
                fields[name] = _unb64(fields[name])
            fields["adverts"] = [_unb64(a) for a in fields["adverts"]]
            fields["log"] = [_unb64(e) for e in fields.get("log", [])]  # absent in files before §17
            fields["pair_password"] = _unb64(fields.get("pair_password"))
            fields["restore_repo"] = bool(fields.get("restore_repo", False))
            record = cls(**fields)
        except (TypeError, KeyError, ValueError):
            raise DecodeError("groups file: a group entry has unknown, missing or malformed fields") from None
        if not isinstance(record.group_key, bytes) or len(record.group_key) != 32:
            raise DecodeError("groups file: a group key is 32 bytes")
        if (record.secret is None) == (record.grant is None):
            raise DecodeError("groups file: a group holds either its secret or a backup grant")
        return record


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes | None:
    if text is None:
        return None
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text, validate=True)


class GroupFile:
    """The sealed ``groups`` file in a node's data dir."""

    def __init__(self, path: Path, identity: KeyPair) -> None:
        self.path = path
        self._key = derive_key(FILE_KEY_CONTEXT, identity.seed)

    def load(self) -> list[GroupRecord]:
        """Every group saved; none if there is no file yet. A damaged file is an error, not a reset."""
        return [
            GroupRecord.from_wire(entry) for entry in read_sealed_list(self.path, self._key, MAGIC, "groups")
        ]

    def save(self, records: list[GroupRecord]) -> None:
        write_sealed_list(self.path, self._key, MAGIC, [record.to_wire() for record in records])


__all__ = ["GroupFile", "GroupRecord"]
