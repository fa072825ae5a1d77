"""``hyphal secret ...``: put, get, rm, ls, grant and revoke secrets in the replicated secret store."""

from __future__ import annotations

import base64
import sys
from pathlib import Path
from typing import Any

import click

from hyphal.cli.common import call, command_options, emit, human_size, wants_json
from hyphal.errors import InvalidInput
from hyphal.secrets.records import MAX_PLAINTEXT


@click.group("secret")
def secret_group() -> None:
    """Small secrets (API keys, passwords) sealed to this node's key and held by the DHT."""


def _summary(found: dict[str, Any]) -> str:
    readers = len(found["readers"])
    shared = f", {readers} reader(s)" if readers else ""
    return f"{found['url']}  {human_size(found['size'])}  version {found['version']}{shared}"


@secret_group.command("put")
@click.argument("url")
@click.option("--file", "path", type=click.Path(path_type=Path), help="Read the secret from a file.")
@command_options
def put(ctx: click.Context, url: str, path: Path | None) -> None:
    """Store a secret under URL, from --file or stdin (at most 4096 bytes); only this node reads it."""
    # One byte over the limit is enough for the daemon to say the secret is too large.
    value = path.read_bytes() if path is not None else sys.stdin.buffer.read(MAX_PLAINTEXT + 1)
    stored = call(ctx, "secret.put", {"url": url, "value": base64.b64encode(value).decode()})
    emit(ctx, stored, f"stored {_summary(stored)}")


@secret_group.command("get")
@click.argument("args", nargs=-1, metavar="[OWNER_KEY] URL")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Write it to a file, not stdout.")
@command_options
def get(ctx: click.Context, args: tuple[str, ...], output: Path | None) -> None:
    """Print a secret: this node's own, or OWNER_KEY's if it granted this node."""
    if len(args) not in (1, 2):
        raise InvalidInput("usage: hyphal secret get [OWNER_KEY] URL")
    owner, url = (None, args[0]) if len(args) == 1 else args
    found = call(ctx, "secret.get", {"url": url, "owner": owner})
    value = base64.b64decode(found["value"])
    if output is not None:
        output.write_bytes(value)
        emit(
            ctx,
            {k: v for k, v in found.items() if k != "value"},
            f"wrote {human_size(len(value))} to {output}",
        )
    elif wants_json(ctx):
        emit(ctx, found, "")
    else:
        sys.stdout.buffer.write(value)
        sys.stdout.buffer.flush()


@secret_group.command("rm")
@click.argument("url")
@command_options
def rm(ctx: click.Context, url: str) -> None:
    """Delete this node's secret URL everywhere (a signed tombstone replaces it)."""
    done = call(ctx, "secret.rm", {"url": url})
    emit(ctx, done, f"deleted {done['url']} (version {done['version']})")


@secret_group.command("ls")
@click.option("--held", is_flag=True, help="The copies this node stores for the network instead.")
@command_options
def ls(ctx: click.Context, held: bool) -> None:
    """The secrets this node owns (remembered in its data dir, sealed with its key)."""
    found = call(ctx, "secret.ls", {"held": held})
    if held:
        lines = [
            f"{h['id'][:16]}…  owner {h['owner'][:16]}…  version {h['version']}"
            + ("  (deleted)" if h["deleted"] else "")
            for h in found
        ]
        emit(ctx, found, "\n".join(lines) if lines else "no secrets held here")
    else:
        emit(ctx, found, "\n".join(_summary(s) for s in found) if found else "no secrets owned by this node")


def _reader_change(name: str, method: str, done: str, doc: str) -> None:
    @secret_group.command(name, help=doc)
    @click.argument("url")
    @click.argument("reader", metavar="READER_KEY")
    @command_options
    def run(ctx: click.Context, url: str, reader: str) -> None:
        changed = call(ctx, method, {"url": url, "reader": reader})
        emit(ctx, changed, f"{done} {reader[:16]}…: {_summary(changed)}")


_reader_change("grant", "secret.grant", "granted", "Let READER_KEY (a node's public key) read secret URL.")
_reader_change(
    "revoke",
    "secret.revoke",
    "revoked",
    "Stop READER_KEY reading new versions of URL (it keeps what it read: rotate the secret too).",
)


__all__ = ["secret_group"]
