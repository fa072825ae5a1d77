"""Control methods on the signed feeds in the node's store."""

from __future__ import annotations

from hyphal.control import encoding
from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, method
from hyphal.errors import NotAvailable
from hyphal.feed import Feed
from hyphal.feed.manifest import discovery_key


def _feed(call: Call, key: bytes) -> Feed:
    """The live feed if the node replicates it (its length is current), else the stored one."""
    node = call.node
    if node.storage.load_feed(key) is None:
        raise NotAvailable(f"no feed {key.hex()} in this node's store")
    live = node.feeds.get(discovery_key(key))
    return live.feed if live is not None else Feed.open(node.storage, key)


@method("feed.list")
async def feed_list(call: Call) -> list[Json]:
    return [encoding.feed_info(_feed(call, key)) for key in call.node.storage.feed_keys()]


@method("feed.info", "key")
async def feed_info(call: Call) -> Json:
    return encoding.feed_info(_feed(call, call.params.hex32("key")))
