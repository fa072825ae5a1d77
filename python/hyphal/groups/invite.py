"""Group invites: ``hyphal://group/<group key>?s=<secret>&n=<name>&peer=<host:port>``.

An invite is a capability: whoever holds it can find the group, read what
its members share and join. It carries the group's public key, the group
secret and, as hints for a first connection, the name and the addresses of
members. The secret never shows in ``repr``, ``str``, logs or error
messages: errors about a URI describe what is wrong without quoting it.
Layout in docs/PROTOCOL.md §14.2.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from urllib.parse import parse_qs, quote, urlsplit

from hyphal.errors import DecodeError, InvalidAddress, InvalidInput
from hyphal.net.endpoint import parse_endpoint

SCHEME = "hyphal"
KEY_SIZE = 32
SECRET_SIZE = 32
MAX_NAME_LEN = 200
MAX_PEERS = 16
MAX_URI_LEN = 4096


def b32(data: bytes) -> str:
    """Lowercase RFC 4648 base32 without padding: case-insensitive and safe in a URI."""
    return base64.b32encode(data).decode("ascii").rstrip("=").lower()


def unb32(text: str, size: int, what: str) -> bytes:
    if len(text) != (size * 8 + 4) // 5:
        raise DecodeError(f"{what} is not {size} bytes of base32")
    try:
        data = base64.b32decode(text.upper() + "=" * (-len(text) % 8))
    except (binascii.Error, ValueError):
        raise DecodeError(f"{what} is not valid base32") from None
    if b32(data) != text.lower():  # a non-canonical encoding of the same bytes
        raise DecodeError(f"{what} is not canonical base32")
    return data


@dataclass(frozen=True, slots=True)
class Invite:
    group_key: bytes
    secret: bytes = field(repr=False)
    name: str = ""
    peers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if len(self.group_key) != KEY_SIZE or len(self.secret) != SECRET_SIZE:
            raise InvalidInput(f"a group key and a group secret are {KEY_SIZE} bytes each")
        if len(self.name) > MAX_NAME_LEN:
            raise InvalidInput(f"a group name is at most {MAX_NAME_LEN} characters")
        if len(self.peers) > MAX_PEERS:
            raise InvalidInput(f"an invite lists at most {MAX_PEERS} peers")
        try:
            # Undecodable bytes in a command line arrive as lone surrogates: an invite holding
            # them could be accepted but never written out again (to_uri, the groups file).
            for text in (self.name, *self.peers):
                text.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput("an invite's name and peers must be valid Unicode text") from None
        for peer in self.peers:
            try:
                parse_endpoint(peer)
            except InvalidAddress:
                # Name the rule, not the text: errors about an invite never quote it.
                raise InvalidAddress(
                    "a peer address is host:port, [IPv6]:port or ws://host:port, with a port in 1..65535"
                ) from None

    @property
    def group_id(self) -> str:
        """The group key in base32: the ``<id>`` of the URI, safe to show and log."""
        return b32(self.group_key)

    def to_uri(self) -> str:
        """The full invite, secret included: hand it only to whoever should join."""
        query = [f"s={b32(self.secret)}"]
        if self.name:
            query.append("n=" + quote(self.name, safe=""))
        query += ["peer=" + quote(peer, safe="[]:") for peer in self.peers]
        return f"{SCHEME}://group/{self.group_id}?{'&'.join(query)}"

    def __str__(self) -> str:
        return f"{SCHEME}://group/{self.group_id}?s=<secret>"

    @classmethod
    def from_uri(cls, uri: str) -> Invite:
        """Parse an invite; :class:`DecodeError` names what is wrong, never the URI's text."""
        if not isinstance(uri, str) or len(uri) > MAX_URI_LEN:
            raise DecodeError(f"an invite is a hyphal://group/... URI of at most {MAX_URI_LEN} characters")
        try:
            parts = urlsplit(uri.strip())
        except ValueError:
            raise DecodeError("the invite is not a valid URI") from None
        if parts.scheme != SCHEME or parts.netloc != "group":
            raise DecodeError("an invite starts with hyphal://group/")
        group_key = unb32(parts.path.removeprefix("/"), KEY_SIZE, "the invite's group id")
        try:
            query = parse_qs(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
        except ValueError:
            raise DecodeError("the invite's parameters are malformed") from None
        secrets = query.get("s", [])
        if len(secrets) != 1:
            raise DecodeError("the invite must carry exactly one group secret (s=)")
        secret = unb32(secrets[0], SECRET_SIZE, "the invite's group secret")
        names = query.get("n", [""])
        if len(names) != 1:
            raise DecodeError("the invite carries more than one name")
        try:
            return cls(group_key, secret, names[0], tuple(query.get("peer", [])))
        except InvalidInput as exc:
            raise DecodeError(f"bad invite: {exc}") from None


__all__ = ["Invite", "b32", "unb32"]
