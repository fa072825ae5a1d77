"""The ``blob`` commands: content-addressed blobs in the node's store."""

from __future__ import annotations

from pathlib import Path

import click

from hyphal.cli.common import call, command_options, emit, human_size


@click.group("blob")
def blob_group() -> None:
    """Content-addressed blobs in the node's store."""


@blob_group.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@command_options
def blob_add(ctx: click.Context, path: Path) -> None:
    """Import a file into the store (kept until removed); prints its hash."""
    added = call(ctx, "blob.add", {"path": str(path.absolute())})
    emit(ctx, added, f"{added['hash']}  {human_size(added['size'])}")


@blob_group.command("get")
@click.argument("hash_hex", metavar="HASH")
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="Where to write it.")
@command_options
def blob_get(ctx: click.Context, hash_hex: str, output: Path) -> None:
    """Write a blob to a file, fetched first from the connected peers if it is not here."""
    got = call(ctx, "blob.get", {"hash": hash_hex, "dest": str(output.absolute())})
    emit(ctx, got, f"wrote {human_size(got['size'])} to {got['dest']}")


@blob_group.command("ls")
@command_options
def blob_ls(ctx: click.Context) -> None:
    """Every blob in the store, whole or partial."""
    blobs = call(ctx, "blob.list")
    lines = [f"{b['hash']}  {human_size(b['size'])}{'' if b['complete'] else '  (partial)'}" for b in blobs]
    emit(ctx, blobs, "\n".join(lines) if lines else "no blobs")


@blob_group.command("rm")
@click.argument("hash_hex", metavar="HASH")
@command_options
def blob_rm(ctx: click.Context, hash_hex: str) -> None:
    """Drop this node's tag on a blob; `hyphal blob gc` (or the scheduled GC) then frees it."""
    removed = call(ctx, "blob.rm", {"hash": hash_hex})
    if removed["kept_by"]:
        text = f"untagged {removed['hash']}; still kept by {', '.join(removed['kept_by'])}"
    elif removed["untagged"]:
        text = f"untagged {removed['hash']}; the next gc frees it (`hyphal blob gc`)"
    else:
        text = f"{removed['hash']} had no tag of this node's; the next gc frees it (`hyphal blob gc`)"
    emit(ctx, removed, text)


@blob_group.command("gc")
@command_options
def blob_gc(ctx: click.Context) -> None:
    """Delete every blob nothing references now (no tag, group file or download keeps it)."""
    result = call(ctx, "blob.gc")
    count = len(result["deleted"])
    emit(ctx, result, f"freed {count} blob{'' if count == 1 else 's'}, {human_size(result['freed_bytes'])}")


__all__ = ["blob_group"]
