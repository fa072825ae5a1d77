"""The ``feed`` commands: feeds shared by key alone (create, append, cat, follow) and the store's feeds.

``cat`` and ``follow`` print the feed's bytes on stdout as they arrive (with
``--json``, one ``{"index", "offset", "data"}`` line per piece, data in base64).
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path
from typing import Any, BinaryIO

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeRemainingColumn

from hyphal.cli.common import call, command_options, data_dir, emit, human_size, wants_json
from hyphal.cli.progress import ByteBar
from hyphal.control.client import ControlClient
from hyphal.control.protocol import NodeStopped

STDIN_PIECE = 512 * 1024
"""Bytes of stdin per append request at most: base64 of it fits a control line."""
BAR_AFTER = 16
"""A ``cat`` of more blocks than this shows a progress bar (on stderr)."""


@click.group("feed")
def feed_group() -> None:
    """Feeds shared by key (create, append, cat, follow) and every feed in the store."""


def _feed_line(f: dict[str, Any]) -> str:
    flags = [
        flag
        for flag, on in (
            ("writable", f["writable"]),
            ("encrypted", f["encrypted"]),
            ("shared", f.get("shared")),
        )
        if on
    ]
    extra = f"  ({', '.join(flags)})" if flags else ""
    return f"{f['key']}  {f['downloaded']}/{f['length']} blocks{extra}"


timeout_option = click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="How long to look for the feed's peers on the DHT, and to wait for a block (default 20).",
)


@feed_group.command("create")
@click.option("--encrypted", is_flag=True, help="A private feed: the share string carries its read secret.")
@click.option("--name", metavar="NAME", help="Its name on this node (default: a random one).")
@command_options
def feed_create(ctx: click.Context, encrypted: bool, name: str | None) -> None:
    """Make a feed this node writes, announced on the DHT; prints its share string."""
    made = call(ctx, "feed.create", {"encrypted": encrypted, "name": name})
    if not wants_json(ctx) and encrypted:
        click.echo(
            "private feed: its share string carries the read secret; give it only to readers", err=True
        )
    emit(ctx, made, made["share"])


@feed_group.command("append")
@click.argument("feed")
@click.argument("file", required=False, type=click.Path(path_type=Path, dir_okay=False))
@command_options
def feed_append(ctx: click.Context, feed: str, file: Path | None) -> None:
    """Append FILE (or stdin, as it comes) to a feed this node writes, in blocks."""
    if file is not None:
        with ByteBar("appending") as bar:
            result = call(
                ctx, "feed.append", {"feed": feed, "path": str(file.absolute())}, on_progress=bar.update
            )
    else:
        result = _append_stdin(ctx, feed, sys.stdin.buffer)
    text = (
        f"appended {result['appended_blocks']} block(s), {human_size(result['appended_bytes'])}: "
        f"feed {result['key'][:16]}… is {result['length']} blocks"
    )
    emit(ctx, result, text)


def _append_stdin(ctx: click.Context, feed: str, stdin: BinaryIO) -> dict[str, Any]:
    """Each piece of stdin as it comes (a line typed, a chunk piped) is appended at once."""
    blocks = size = 0
    result: dict[str, Any] | None = None
    read = getattr(stdin, "read1", stdin.read)
    with ControlClient(data_dir(ctx)) as client:
        while piece := read(STDIN_PIECE):
            data = base64.b64encode(piece).decode("ascii")
            result = client.call("feed.append", {"feed": feed, "data": data})
            blocks += result["appended_blocks"]
            size += result["appended_bytes"]
        if result is None:  # empty input: nothing appended, but the feed's state all the same
            result = client.call("feed.info", {"key": feed})
    return {**result, "appended_blocks": blocks, "appended_bytes": size}


class _BlockBar:
    """Blocks of a long ``cat`` on stderr, shown from the first progress on."""

    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def update(self, body: Any) -> None:
        if not isinstance(body, dict) or int(body.get("blocks_total", 0)) <= BAR_AFTER:
            return
        if self._progress is None:
            self._progress = Progress(
                TextColumn("downloading"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("blocks  {task.fields[size]}"),
                TimeRemainingColumn(),
                console=Console(stderr=True),
            )
            self._progress.start()
            self._task = self._progress.add_task("cat", total=int(body["blocks_total"]), size="")
        assert self._task is not None
        size = human_size(int(body.get("bytes_done", 0)))
        self._progress.update(self._task, completed=int(body.get("blocks_done", 0)), size=size)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()


def _printer(ctx: click.Context) -> Any:
    out = sys.stdout.buffer

    def show(event: Any) -> None:
        if not isinstance(event, dict):
            return
        if wants_json(ctx):
            out.write(json.dumps(event, sort_keys=True).encode() + b"\n")
        else:
            out.write(base64.b64decode(event.get("data", "")))
        out.flush()

    return show


@feed_group.command("cat")
@click.argument("share")
@click.option("--start", type=click.IntRange(min=0), default=0, help="First block (default 0).")
@click.option("--end", type=click.IntRange(min=0), help="Block to stop before (default: the feed's length).")
@timeout_option
@command_options
def feed_cat(ctx: click.Context, share: str, start: int, end: int | None, timeout: float | None) -> None:
    """Print blocks [START, END) of a feed, found by its key on the DHT and verified with proofs."""
    bar = _BlockBar()
    try:
        call(
            ctx,
            "feed.cat",
            {"feed": share, "start": start, "end": end, "timeout": timeout},
            on_progress=bar.update,
            on_event=_printer(ctx),
        )
    finally:
        bar.close()


@feed_group.command("follow")
@click.argument("share")
@click.option("--start", type=click.IntRange(min=0), default=0, help="First block (default 0).")
@timeout_option
@command_options
def feed_follow(ctx: click.Context, share: str, start: int, timeout: float | None) -> None:
    """Print a feed from START on, then every append live, until Ctrl-C."""

    def started(body: Any) -> None:
        if isinstance(body, dict) and "following" in body:
            key, length = body["following"], body["length"]
            click.echo(f"following feed {key[:16]}… ({length} blocks); Ctrl-C to stop", err=True)

    try:
        call(
            ctx,
            "feed.follow",
            {"feed": share, "start": start, "timeout": timeout},
            on_progress=started,
            on_event=_printer(ctx),
        )
    except KeyboardInterrupt:
        return
    except NodeStopped:
        # The node going away ends the stream, as `watch` ends: not a failed command.
        click.echo("the node stopped; nothing more to follow", err=True)


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
    """One feed (by key or share string): length, fork, signers, encryption."""
    found = call(ctx, "feed.info", {"key": key})
    emit(ctx, found, "\n".join(f"{k}: {v}" for k, v in sorted(found.items())))


__all__ = ["feed_group"]
