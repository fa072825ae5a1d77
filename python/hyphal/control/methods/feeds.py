"""Control methods on feeds: the feeds in the node's store, and feeds shared by key alone
(create, append, cat, follow; found through DHT announces, see :mod:`hyphal.replication.discovery`).

Block data travels base64-encoded, in ``event`` bodies of at most :data:`CHUNK` bytes of data
(``{"index", "offset", "data"}``), so a block of any size fits the control protocol's lines.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path

import anyio
import anyio.lowlevel

from hyphal.control import encoding
from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, Throttle, method
from hyphal.errors import DecryptionError, InvalidInput, NotAvailable
from hyphal.feed import Feed
from hyphal.feed.encryption import BlockCipher
from hyphal.feed.manifest import discovery_key
from hyphal.feed.share import FeedShare
from hyphal.replication.discovery import FIND_TIMEOUT, short
from hyphal.replication.driver import FeedReplication

BLOCK_SIZE = 64 * 1024
"""Appended input is cut into blocks of this size: small enough to stream and prove one by one,
large enough that a block's proof and signature are a small overhead."""
BATCH_BLOCKS = 64
"""Blocks per append transaction (one tree update and one signature each)."""
CHUNK = 256 * 1024
"""Block bytes per streamed event: base64 of it stays well under a control line (1 MiB)."""


def _feed(call: Call, key: bytes) -> Feed:
    """The live feed if the node replicates it (its length is current), else the stored one."""
    node = call.node
    if node.storage.load_feed(key) is None:
        raise NotAvailable(f"no feed {key.hex()} in this node's store")
    live = node.feeds.get(discovery_key(key))
    return live.feed if live is not None else Feed.open(node.storage, key)


def _share(call: Call, param: str = "feed") -> FeedShare:
    return FeedShare.parse(call.params.text(param))


def _info(call: Call, feed: Feed) -> Json:
    shared = {entry.key for entry in call.node.shared_feeds.shared()}
    return {**encoding.feed_info(feed), "shared": feed.key in shared}


@method("feed.list")
async def feed_list(call: Call) -> list[Json]:
    return [_info(call, _feed(call, key)) for key in call.node.storage.feed_keys()]


@method("feed.info", "key")
async def feed_info(call: Call) -> Json:
    return _info(call, _feed(call, _share(call, "key").key))


@method("feed.create", "encrypted", "name")
async def feed_create(call: Call) -> Json:
    discovery = call.node.shared_feeds
    replication = await discovery.create(
        encrypted=call.params.flag("encrypted"), name=call.params.opt_text("name")
    )
    feed = replication.feed
    return {**_info(call, feed), "share": discovery.share_of(feed).to_uri()}


@method("feed.append", "feed", "data", "path")
async def feed_append(call: Call) -> Json:
    """Append base64 ``data``, or the file at ``path`` (with progress), in blocks of :data:`BLOCK_SIZE`."""
    params = call.params
    feed = call.node.shared_feeds.writable(_share(call)).feed
    data, path = params.opt_text("data"), params.opt_text("path")
    if (data is None) == (path is None):
        raise InvalidInput("feed.append: give either data or path")
    before_length, before_bytes = feed.length, feed.byte_length
    if data is not None:
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise InvalidInput("feed.append: data must be base64") from None
        _append(feed, [raw[i : i + BLOCK_SIZE] for i in range(0, len(raw), BLOCK_SIZE)])
    else:
        await _append_file(call, feed, params.path("path"))
    return {
        **_info(call, feed),
        "appended_blocks": feed.length - before_length,
        "appended_bytes": feed.byte_length - before_bytes,
    }


def _append(feed: Feed, blocks: list[bytes]) -> None:
    for i in range(0, len(blocks), BATCH_BLOCKS):
        feed.append_batch(blocks[i : i + BATCH_BLOCKS])


async def _append_file(call: Call, feed: Feed, path: Path) -> None:
    total = path.stat().st_size
    throttle = Throttle(call.emit)

    async def run() -> Json:
        done = 0
        with path.open("rb") as file:
            while batch := [b for b in (file.read(BLOCK_SIZE) for _ in range(BATCH_BLOCKS)) if b]:
                feed.append_batch(batch)
                done += sum(len(b) for b in batch)
                throttle({"bytes_done": done, "bytes_total": total})
                await anyio.lowlevel.checkpoint()  # the replication pushes the batch while we read on
        return {}

    await throttle.run(run)


@method("feed.cat", "feed", "start", "end", "timeout")
async def feed_cat(call: Call) -> Json:
    """Stream blocks ``[start, end)`` as events, downloaded with proofs from the feed's peers."""
    params = call.params
    share = _share(call)
    timeout = params.opt_seconds("timeout") or FIND_TIMEOUT
    replication = await call.node.shared_feeds.open(share, timeout=timeout)
    feed = replication.feed
    known = feed.length if feed.writable else await _settle(replication, timeout)
    start = params.opt_int("start") or 0
    end = params.opt_int("end")
    end = known if end is None else end
    if end > known:
        raise InvalidInput(f"feed {short(share.key)} has {known} blocks: the range ends at {known} at most")
    if start > end:
        raise InvalidInput(f"the range [{start}, {end}) is empty: start is at most end")
    throttle = Throttle(call.emit)
    sent = 0

    async def run() -> Json:
        nonlocal sent
        async with anyio.create_task_group() as tg:
            if not feed.has_range(start, end):
                tg.start_soon(replication.download, start, end)
            for index in range(start, end):
                await _wait_for_block(feed, index, timeout)
                sent += await _emit_block(call, feed, share, index)
                throttle({"blocks_done": index + 1 - start, "blocks_total": end - start, "bytes_done": sent})
            tg.cancel_scope.cancel()
        return {"key": feed.key.hex(), "start": start, "end": end, "length": known, "bytes": sent}

    return await throttle.run(run)


@method("feed.follow", "feed", "start", "timeout")
async def feed_follow(call: Call) -> None:
    """Stream every block from ``start`` on as events, live, until the client goes."""
    params = call.params
    share = _share(call)
    replication = await call.node.shared_feeds.open(
        share, timeout=params.opt_seconds("timeout") or FIND_TIMEOUT
    )
    feed = replication.feed
    index = params.opt_int("start") or 0
    async with anyio.create_task_group() as tg:
        if not feed.writable:
            # Every block from `index` on, and each new one as its writer appends it (never done:
            # it ends when the client goes, which cancels this request).
            tg.start_soon(replication.download, index, None)
        await call.emit("progress", {"following": feed.key.hex(), "length": feed.length})
        while True:
            while feed.has(index):
                await _emit_block(call, feed, share, index)
                index += 1
            await feed.changed()


async def _settle(replication: FeedReplication, timeout: float) -> int:
    try:
        return await replication.settle(timeout)
    except TimeoutError:
        raise NotAvailable(
            f"the peers of feed {short(replication.feed.key)} did not send its head in {timeout:g} s"
        ) from None


async def _wait_for_block(feed: Feed, index: int, timeout: float) -> None:
    while not feed.has(index):
        with anyio.move_on_after(timeout) as scope:
            await feed.changed()
        if scope.cancelled_caught:
            raise NotAvailable(f"no peer sent block {index} of feed {short(feed.key)} in {timeout:g} s")


async def _emit_block(call: Call, feed: Feed, share: FeedShare, index: int) -> int:
    try:
        if share.read_secret is not None and not feed.writable:
            # The share's secret, which may be newer than the one this replica was opened with.
            data = BlockCipher(share.read_secret, feed.key).open(index, feed.get_stored(index))
        else:
            data = feed.get_nowait(index)
    except DecryptionError:
        raise DecryptionError(
            f"block {index} of feed {short(feed.key)} does not decrypt with the read secret in this "
            "share: ask its writer for the share string again"
        ) from None
    for offset in range(0, max(len(data), 1), CHUNK):
        piece = base64.b64encode(data[offset : offset + CHUNK]).decode("ascii")
        await call.emit("event", {"index": index, "offset": offset, "data": piece})
    return len(data)
