"""``hyphal record put`` and ``hyphal record get``: BEP 44-style records in the DHT."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hyphal.cli.common import call, command_options, emit
from hyphal.errors import InvalidInput


@click.group("record")
def record_group() -> None:
    """Small records (up to 1000 bytes) stored in the DHT, immutable or mutable."""


def value_bytes(value: str | None, file: Path | None) -> bytes:
    """VALUE as UTF-8, or the bytes of --file (exactly one of them)."""
    if (value is None) == (file is None):
        raise InvalidInput("give the value as an argument or with --file, not both or neither")
    return file.read_bytes() if file is not None else (value or "").encode("utf-8")


def shown_value(found: dict[str, Any]) -> str:
    text = found["value_text"]
    return text if text is not None else f"{found['value_hex']}  (binary, in hex)"


def salt_suffix(found: dict[str, Any]) -> str:
    return f" --salt {found['salt']}" if found["salt"] else ""


@record_group.command("put")
@click.argument("value", required=False)
@click.option("--file", type=click.Path(path_type=Path, dir_okay=False), help="Put this file's bytes.")
@click.option("--mutable", is_flag=True, help="Signed by this node's key, replaced by later puts.")
@click.option("--salt", help="A mutable record's name: one key holds one record per salt.")
@click.option("--cas", type=click.IntRange(min=0), help="Put only if the current seq is this (0: none yet).")
@command_options
def put(
    ctx: click.Context, value: str | None, file: Path | None, mutable: bool, salt: str | None, cas: int | None
) -> None:
    """Store VALUE (or --file) in the DHT; prints the key to get it with."""
    params = {"value_hex": value_bytes(value, file).hex(), "mutable": mutable, "salt": salt, "cas": cas}
    done = call(ctx, "record.put", params)
    what = f"mutable record seq {done['seq']}" if done["mutable"] else "immutable record"
    text = (
        f"stored {what} on {done['stored']} DHT node(s)\n"
        f"key: {done['key']}\n"
        f"get it with: hyphal record get {done['key']}{salt_suffix(done)}"
    )
    emit(ctx, done, text)


@record_group.command("get")
@click.argument("key")
@click.option("--salt", help="The mutable record's salt.")
@command_options
def get(ctx: click.Context, key: str, salt: str | None) -> None:
    """The record under KEY: a hash (immutable) or a public key (mutable, with its --salt)."""
    found = call(ctx, "record.get", {"key": key, "salt": salt})
    about = f"mutable, seq {found['seq']}" if found["mutable"] else "immutable"
    emit(ctx, found, f"{shown_value(found)}\n({about}, {found['size']} bytes)")


__all__ = ["record_group", "salt_suffix", "shown_value", "value_bytes"]
