"""The registry of fuzz targets: one module per target, each defining ``TARGET``.

Adding a target is one module in this package and one line here.
"""

from __future__ import annotations

import importlib

from fuzz.harness import Target

TARGETS = (
    "mux",  # net/mux.py: the frame plaintexts of a connection, as a sequence
    "frames",  # net/frames.py: the encrypted frame stream, handshake message stream, varints
    "handshake",  # net/handshake.py + net/noise.py: the three Noise XX messages and their payloads
    "replication",  # replication/messages.py: every feed replication message
    "signed_values",  # signed_value.py, replication/values.py: signed values and VALUE messages
    "feed_heads",  # feed/head.py, feed/manifest.py: signed heads and manifests
    "proofs",  # merkle.py -> Rust: proof decoding and verification against a real tree
    "blob_messages",  # blobs/messages.py: blob requests and replies
    "blob_ranges",  # Rust RangeDecoder: verified blob range responses, raw and mutated
    "blob_refs",  # blobs/collection.py, blobs/private.py: collections and private blob references
    "dht_messages",  # dht/messages.py: datagrams and the built-in payloads
    "dht_records",  # dht/records.py, dht/routing.py: node records, announces, the saved table
    "secret_records",  # secrets/records.py: secret records and requests
    "group_messages",  # groups/messages.py, groups/keys.py: ops, adverts, channel, backup, values
    "uris",  # groups/invite.py, feed/share.py, net/address.py: invites, feed shares, addresses
    "config",  # config.py: NodeConfig.load of a TOML file
    "control",  # control/protocol.py + methods/registry.py + params.py: control request lines
    "identity",  # keystore.py: identity files
)


def load(name: str) -> Target:
    """The target ``name`` (its module is imported now)."""
    if name not in TARGETS:
        raise KeyError(f"no fuzz target {name!r}; the targets are {', '.join(TARGETS)}")
    target: Target = importlib.import_module(f"fuzz.targets.{name}").TARGET
    return target


__all__ = ["TARGETS", "load"]
