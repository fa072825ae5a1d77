"""Signed append-only feeds and signed value feeds (docs/PROTOCOL.md §9)."""

from __future__ import annotations

from hyphal.feed.bitfield import Bitfield
from hyphal.feed.encryption import BlockCipher
from hyphal.feed.feed import Feed, FeedChange
from hyphal.feed.head import HeadSignature, SignedHead, Signer, keypair_signer
from hyphal.feed.manifest import Manifest, discovery_key
from hyphal.feed.signed_value import SignedValue, SignedValueFeed, value_id

__all__ = [
    "Bitfield",
    "BlockCipher",
    "Feed",
    "FeedChange",
    "HeadSignature",
    "Manifest",
    "SignedHead",
    "SignedValue",
    "SignedValueFeed",
    "Signer",
    "discovery_key",
    "keypair_signer",
    "value_id",
]
