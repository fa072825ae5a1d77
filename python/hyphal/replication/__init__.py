"""Feed replication: the wire messages and a sans-I/O state machine per feed.

See docs/PROTOCOL.md §10. A driver (:mod:`~hyphal.replication.driver`) connects a
:class:`Replicator` to the feed's channels ("hyphal/feed/1", id = the
feed's discovery key) and to its storage, and performs the actions it
returns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.replication.actions import (
        Action,
        DownloadDone,
        DropPeer,
        DropReason,
        ForkDetected,
        PeerId,
        Send,
        Serve,
        SetTimer,
        Store,
        VerifyHead,
    )
    from hyphal.replication.capability import capability_key, capability_mac, verify_capability
    from hyphal.replication.messages import (
        Auth,
        Cancel,
        Data,
        Have,
        Head,
        Message,
        MessageType,
        NoData,
        NoDataReason,
        Request,
        Sync,
        Unwant,
        Want,
        decode_message,
    )
    from hyphal.replication.ranges import OPEN_END, RangeSet
    from hyphal.replication.replicator import Replicator
    from hyphal.replication.state import ReplicatorConfig

PROTOCOL = "hyphal/feed/1"
"""The channel protocol name; the channel id is the feed's discovery key."""

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "capability_key": ".capability",
        "capability_mac": ".capability",
        "verify_capability": ".capability",
        "Auth": ".messages",
        "Cancel": ".messages",
        "Data": ".messages",
        "Have": ".messages",
        "Head": ".messages",
        "Message": ".messages",
        "MessageType": ".messages",
        "NoData": ".messages",
        "NoDataReason": ".messages",
        "Request": ".messages",
        "Sync": ".messages",
        "Unwant": ".messages",
        "Want": ".messages",
        "decode_message": ".messages",
        "OPEN_END": ".ranges",
        "RangeSet": ".ranges",
        "Action": ".actions",
        "DownloadDone": ".actions",
        "DropPeer": ".actions",
        "DropReason": ".actions",
        "ForkDetected": ".actions",
        "PeerId": ".actions",
        "Replicator": ".replicator",
        "ReplicatorConfig": ".state",
        "Send": ".actions",
        "Serve": ".actions",
        "SetTimer": ".actions",
        "Store": ".actions",
        "VerifyHead": ".actions",
    },
)

__all__ = [
    "OPEN_END",
    "PROTOCOL",
    "Action",
    "Auth",
    "Cancel",
    "Data",
    "DownloadDone",
    "DropPeer",
    "DropReason",
    "ForkDetected",
    "Have",
    "Head",
    "Message",
    "MessageType",
    "NoData",
    "NoDataReason",
    "PeerId",
    "RangeSet",
    "Replicator",
    "ReplicatorConfig",
    "Request",
    "Send",
    "Serve",
    "SetTimer",
    "Store",
    "Sync",
    "Unwant",
    "VerifyHead",
    "Want",
    "capability_key",
    "capability_mac",
    "decode_message",
    "verify_capability",
]
