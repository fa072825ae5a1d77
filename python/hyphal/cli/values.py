"""``hyphal value set|get|watch``: signed values, replicated live and found by key in the DHT."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from hyphal.cli.common import call, command_options, emit, wants_json
from hyphal.cli.records import salt_suffix, shown_value, value_bytes
from hyphal.control.protocol import NodeStopped


@click.group("value")
def value_group() -> None:
    """Signed values: small, named by this node's key and a name, pushed live to watchers."""


@value_group.command("set")
@click.argument("name")
@click.argument("value", required=False)
@click.option("--file", type=click.Path(path_type=Path, dir_okay=False), help="Set this file's bytes.")
@click.option("--cas", type=click.IntRange(min=0), help="Set only if the current seq is this (0: none yet).")
@command_options
def set_value(ctx: click.Context, name: str, value: str | None, file: Path | None, cas: int | None) -> None:
    """Sign VALUE (or --file) as this node's value NAME; watchers get it at once."""
    params = {"name": name, "value_hex": value_bytes(value, file).hex(), "cas": cas}
    done = call(ctx, "value.set", params)
    text = (
        f"value {name} is seq {done['seq']} (stored on {done['stored']} DHT node(s))\n"
        f"read it elsewhere with: hyphal value get {done['key']}{salt_suffix(done)}"
    )
    emit(ctx, done, text)


@value_group.command("get")
@click.argument("key")
@click.option("--salt", help="The value's name.")
@command_options
def get_value(ctx: click.Context, key: str, salt: str | None) -> None:
    """The newest version of the value KEY (a public key) / --salt this node or the DHT has."""
    found = call(ctx, "value.get", {"key": key, "salt": salt})
    emit(ctx, found, f"{shown_value(found)}\n(seq {found['seq']}, {found['size']} bytes)")


def _version_line(version: dict[str, Any]) -> str:
    return f"seq {version['seq']}: {shown_value(version)}"


@value_group.command("watch")
@click.argument("key")
@click.option("--salt", help="The value's name.")
@command_options
def watch_value(ctx: click.Context, key: str, salt: str | None) -> None:
    """Print the value's current version, then each new one as it arrives, until Ctrl-C."""

    def started(body: Any) -> None:
        if isinstance(body, dict) and "watching" in body:
            name = f" {body['salt']}" if body["salt"] else ""
            click.echo(f"watching value{name} of {body['key'][:16]}…; Ctrl-C to stop", err=True)

    def show(version: Any) -> None:
        emit(ctx, version, _version_line(version))
        sys.stdout.flush()

    try:
        call(ctx, "value.watch", {"key": key, "salt": salt}, on_progress=started, on_event=show)
    except KeyboardInterrupt:
        return
    except NodeStopped:
        # As `hyphal watch`: the node going away ends the stream, it is not a failure.
        click.echo("the node stopped; nothing more to watch", err=True)
        return
    if not wants_json(ctx):
        click.echo("the watch ended", err=True)


__all__ = ["value_group"]
