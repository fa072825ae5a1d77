"""Control methods on the content-addressed blobs in the node's store."""

from __future__ import annotations

from hyphal.control import encoding
from hyphal.control.encoding import Json
from hyphal.control.methods.registry import Call, method
from hyphal.errors import NotAvailable
from hyphal.groups.group import BLOB_TAG_PREFIX as GROUP_BLOB_TAG_PREFIX

FETCH_TIMEOUT = 600.0
BLOB_TAG_PREFIX = "cli/"
"""Blobs added with ``blob add`` are tagged so garbage collection keeps them."""


@method("blob.add", "path")
async def blob_add(call: Call) -> Json:
    blobs = call.node.blobs
    with blobs.import_file(call.params.path("path")) as tag:
        blobs.set_tag(BLOB_TAG_PREFIX + tag.hash.hex(), tag.hash)
        info = blobs.info(tag.hash)
    assert info is not None
    return encoding.blob_info(info)


@method("blob.list")
async def blob_list(call: Call) -> list[Json]:
    return [encoding.blob_info(b) for b in call.node.blobs.blobs()]


@method("blob.get", "hash", "dest")
async def blob_get(call: Call) -> Json:
    """Export a blob, fetching it first (from every peer the node is connected to, striped,
    through the node's one fetcher: a group fetching it too shares the download) if the
    store does not hold it whole."""
    node = call.node
    blob_hash, dest = call.params.hex32("hash"), call.params.path("dest")
    await node.fetch_blob(blob_hash, tag=BLOB_TAG_PREFIX + blob_hash.hex(), timeout=FETCH_TIMEOUT)
    info = node.blobs.info(blob_hash)
    assert info is not None
    node.blobs.export_file(blob_hash, dest)
    return {**encoding.blob_info(info), "dest": str(dest)}


@method("blob.rm", "hash")
async def blob_rm(call: Call) -> Json:
    """Drop this node's tag on a blob (``blob add``'s, ``blob get``'s): the next GC frees it
    unless something else keeps it, which the result names (``kept_by``)."""
    blobs = call.node.blobs
    blob_hash = call.params.hex32("hash")
    tags = blobs.tags()
    own = BLOB_TAG_PREFIX + blob_hash.hex()
    if own not in tags and blobs.info(blob_hash) is None:
        raise NotAvailable(f"no blob {blob_hash.hex()} here (see `hyphal blob ls`)")
    if own in tags:
        blobs.delete_tag(own)
    kept_by = sorted(_reason(tag) for tag, (h, _) in tags.items() if h == blob_hash and tag != own)
    return {"hash": blob_hash.hex(), "untagged": own in tags, "kept_by": kept_by}


def _reason(tag: str) -> str:
    return "a group file" if tag.startswith(GROUP_BLOB_TAG_PREFIX) else f"tag {tag!r}"


@method("blob.gc")
async def blob_gc(call: Call) -> Json:
    """Garbage-collect now: delete every blob nothing references; what was freed."""
    deleted, freed = await call.node.collect_garbage()
    return {"deleted": [h.hex() for h in deleted], "freed_bytes": freed}
