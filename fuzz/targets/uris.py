"""Text a user or a peer hands over: group invites (groups/invite.py), feed shares (feed/share.py), addresses.

The input is text as a command line delivers it (undecodable bytes as lone
surrogates). Mode byte, then:

0. a group invite ``hyphal://group/...``: refused with ``DecodeError``;
1. a feed share ``hyphal://feed/...`` or a bare feed key: refused with ``InvalidInput``;
2. an address ``host:port`` (net/address.py): refused with ``InvalidAddress``.

Whatever is accepted must survive its own round trip (``to_uri`` then parse again).
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import mode
from fuzz.harness import Target, expect
from hyphal.errors import DecodeError, InvalidAddress, InvalidInput
from hyphal.feed.share import FeedShare
from hyphal.groups.invite import Invite
from hyphal.net.address import format_address, parse_address


def _invite(text: str) -> None:
    invite = Invite.from_uri(text)
    assert Invite.from_uri(invite.to_uri()) == invite, "an invite does not survive its round trip"


def _share(text: str) -> None:
    share = FeedShare.parse(text)
    assert FeedShare.parse(share.to_uri()) == share, "a feed share does not survive its round trip"


def _address(text: str) -> None:
    address = parse_address(text, default_port=7300 if len(text) % 2 else None)
    assert parse_address(format_address(address)) == address, "an address does not survive its round trip"


def run(data: bytes) -> None:
    kind, data = mode(data, 3)
    text = data.decode("utf-8", "surrogateescape")
    if kind == 0:
        expect((DecodeError,), lambda: _invite(text))
    elif kind == 1:
        expect((InvalidInput,), lambda: _share(text))
    else:
        expect((InvalidAddress,), lambda: _address(text))


def seeds() -> Iterator[bytes]:
    invite = Invite(
        bytes(range(32)), b"\x07" * 32, "family photos", ("192.0.2.1:7300", "[fe80::1%eth0]:7301")
    )
    yield b"\x00" + invite.to_uri().encode()
    yield b"\x00" + Invite(b"\x01" * 32, b"\x02" * 32).to_uri().encode()
    yield b"\x01" + FeedShare(bytes(range(32)), b"\x09" * 32).to_uri().encode()
    yield b"\x01" + FeedShare(bytes(range(32))).to_uri().encode()
    yield b"\x01" + bytes(range(32)).hex().encode()
    for address in ("192.0.2.1:7300", "[2001:db8::1]:1", "seed-1.example.org:65535", "[fe80::1%eth0]:80"):
        yield b"\x02" + address.encode()


TARGET = Target("uris", run, (DecodeError, InvalidInput), seeds)
