"""Signed append-only feeds and signed value feeds (docs/PROTOCOL.md §9)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.feed.bitfield import Bitfield
    from hyphal.feed.encryption import BlockCipher
    from hyphal.feed.feed import Feed, FeedChange
    from hyphal.feed.head import HeadSignature, SignedHead, Signer, keypair_signer
    from hyphal.feed.manifest import Manifest, discovery_key
    from hyphal.feed.value_feed import SignedValueFeed
    from hyphal.signed_value import SignedValue, value_id

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "Bitfield": ".bitfield",
        "BlockCipher": ".encryption",
        "Feed": ".feed",
        "FeedChange": ".feed",
        "HeadSignature": ".head",
        "SignedHead": ".head",
        "Signer": ".head",
        "keypair_signer": ".head",
        "Manifest": ".manifest",
        "discovery_key": ".manifest",
        "SignedValue": "hyphal.signed_value",
        "value_id": "hyphal.signed_value",
        "SignedValueFeed": ".value_feed",
    },
)

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
