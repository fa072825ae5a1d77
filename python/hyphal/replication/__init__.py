"""Feed replication: the wire messages and a sans-I/O state machine per feed.

See docs/PROTOCOL.md §10. A driver (elsewhere) connects a
:class:`Replicator` to the feed's channels ("hyphal/feed/1", id = the
feed's discovery key) and to its storage, and performs the actions it
returns.
"""

from __future__ import annotations

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
from hyphal.replication.replicator import (
    Action,
    DownloadDone,
    DropPeer,
    DropReason,
    ForkDetected,
    PeerId,
    Replicator,
    ReplicatorConfig,
    Send,
    Serve,
    SetTimer,
    Store,
    VerifyHead,
)

PROTOCOL = "hyphal/feed/1"
"""The channel protocol name; the channel id is the feed's discovery key."""

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
