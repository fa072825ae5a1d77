"""The ``feed`` commands: the signed feeds in the node's store."""

from __future__ import annotations

from typing import Any

import click

from hyphal.cli.common import call, command_options, emit


@click.group("feed")
def feed_group() -> None:
    """The signed feeds this node stores (group repos among them)."""


def _feed_line(f: dict[str, Any]) -> str:
    flags = [flag for flag, on in (("writable", f["writable"]), ("encrypted", f["encrypted"])) if on]
    extra = f"  ({', '.join(flags)})" if flags else ""
    return f"{f['key']}  {f['downloaded']}/{f['length']} blocks{extra}"


@feed_group.command("list")
@command_options
def feed_list(ctx: click.Context) -> None:
    """Every feed in the store, with its length."""
    feeds = call(ctx, "feed.list")
    emit(ctx, feeds, "\n".join(_feed_line(f) for f in feeds) if feeds else "no feeds")


@feed_group.command("info")
@click.argument("key")
@command_options
def feed_info(ctx: click.Context, key: str) -> None:
    """One feed: length, fork, signers, encryption."""
    found = call(ctx, "feed.info", {"key": key})
    emit(ctx, found, "\n".join(f"{k}: {v}" for k, v in sorted(found.items())))


__all__ = ["feed_group"]
