"""Signed feed heads (feed/head.py) and manifests (feed/manifest.py), as peers send them.

Mode byte, then:

0. a signed head (it must encode back to its bytes), verified against a real 2-of-3 manifest;
1. a manifest (it must encode back to its bytes).

Refusal: ``DecodeError`` or ``SignatureError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from fuzz.fixtures import Feed, keypair, mode
from fuzz.harness import Target
from hyphal.errors import DecodeError, SignatureError
from hyphal.feed.head import SignedHead
from hyphal.feed.manifest import Manifest

FEED = Feed()


def run(data: bytes) -> None:
    kind, data = mode(data, 2)
    if kind == 0:
        head = SignedHead.decode(data)
        assert head.encode() == data, "a head decoded from a non-canonical encoding"
        head.verify(FEED.manifest)
    else:
        manifest = Manifest.decode(data)
        assert manifest.encode() == data, "a manifest decoded from a non-canonical encoding"


def seeds() -> Iterator[bytes]:
    yield b"\x00" + FEED.head.encode()
    yield b"\x01" + FEED.manifest.encode()
    yield b"\x01" + Manifest.single(keypair(7).public_key).encode()


TARGET = Target("feed_heads", run, (DecodeError, SignatureError), seeds)
