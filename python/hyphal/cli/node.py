"""``hyphal node run`` and ``hyphal serve``: the daemon in the foreground."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import click

from hyphal.cli.common import (
    PASSPHRASE_ENV,
    call,
    command_options,
    config,
    emit,
    json_option,
    passphrase_from_env,
    user_errors,
)
from hyphal.control.daemon import DaemonOptions, run_daemon
from hyphal.control.protocol import socket_path
from hyphal.errors import InvalidInput
from hyphal.http.access import read_url
from hyphal.net.address import format_address
from hyphal.node import Node

F = TypeVar("F", bound=Callable[..., Any])


def node_options(command: F) -> F:
    """The options of every way to run the daemon."""
    for option in reversed(
        [
            click.option("--listen", metavar="HOST:PORT", help="TCP and UDP address (default: config)."),
            click.option("--listen-ws", metavar="HOST:PORT", help="Also accept connections over WebSocket."),
            click.option("--bootstrap", multiple=True, metavar="HOST:PORT", help="A DHT seed (repeatable)."),
            click.option("--name", help="This device's name in its groups (default: the host name)."),
            click.option(
                "--advertise", multiple=True, metavar="HOST:PORT", help="Where peers reach this node."
            ),
            click.option("--passphrase-env", is_flag=True, help=f"Unlock with ${PASSPHRASE_ENV}."),
            click.option("-v", "--verbose", is_flag=True, help="Debug logging."),
        ]
    ):
        command = option(command)
    return command


@click.group("node")
def node_group() -> None:
    """Run this device's node."""


@node_group.command("run")
@node_options
@json_option
@click.pass_context
@user_errors
def node_run(ctx: click.Context, /, **options: Any) -> None:
    """Run the node in the foreground until Ctrl-C or SIGTERM."""
    _run(ctx, _options(ctx, options, None))


@click.command("serve")
@click.option("--backup", is_flag=True, help="Back up the groups authorised devices ask it to hold.")
@click.option(
    "--authorize",
    multiple=True,
    metavar="PUBKEYHEX",
    help="A device key whose backup requests to take (repeatable; adds to backup_authorize).",
)
@node_options
@json_option
@click.pass_context
@user_errors
def serve(ctx: click.Context, /, backup: bool, authorize: tuple[str, ...], **options: Any) -> None:
    """Run an always-on node; with --backup, a backup server for the authorised devices."""
    keys = [*config(ctx).backup_authorize, *authorize]
    if backup and not keys:
        raise InvalidInput("a backup server needs --authorize KEY (or backup_authorize in the config)")
    if keys and not backup:
        raise InvalidInput("--authorize is for a backup server: add --backup")
    _run(ctx, _options(ctx, options, frozenset(_device_key(k) for k in keys) if backup else None))


def _device_key(text: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) != 32:
        raise InvalidInput("a device key is 64 hex digits (`hyphal id` shows this device's)")
    return key


def _options(ctx: click.Context, given: dict[str, Any], backup_for: frozenset[bytes] | None) -> DaemonOptions:
    found = config(ctx)
    passphrase = passphrase_from_env(given["passphrase_env"])
    logging.basicConfig(
        level=logging.DEBUG if given["verbose"] else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The command line's options over the config file's: a repeatable option given replaces the list.
    node_config = found.overridden(
        data_dir=found.data_dir.absolute(),
        listen=given["listen"],
        listen_ws=given["listen_ws"],
        bootstrap=given["bootstrap"] or None,
        name=given["name"],
        advertise=given["advertise"] or None,
    )
    return DaemonOptions(node_config, backup_for=backup_for, passphrase=passphrase)


def _run(ctx: click.Context, options: DaemonOptions) -> None:
    def ready(node: Node) -> None:
        address = format_address(node.address)
        public = node.public_key.hex()
        role = "backup server" if options.backup_for is not None else "node"
        data = {
            "public_key": public,
            "address": address,
            "advertised": node.advertised_addresses(),
            "ws_address": None if node.ws_address is None else format_address(node.ws_address),
            "control": str(socket_path(options.data_dir)),
            "data_dir": str(options.data_dir),
            "backup": options.backup_for is not None,
            "http": read_url(options.data_dir),
        }
        emit(ctx, data, f"{role} {public} listening on {address}")
        sys.stdout.flush()

    anyio.run(run_daemon, options, ready)


@click.command("status")
@command_options
def status(ctx: click.Context) -> None:
    """The running node: its key, address and groups."""
    found = call(ctx, "status")
    role = "backup server" if found["backup"] else "node"
    lines = [f"{role} {found['public_key']} listening on {found['address']}", f"data: {found['data_dir']}"]
    lines += [f"group {g['name']} ({g['id']}): {g['members']} members" for g in found["groups"]]
    emit(ctx, found, "\n".join(lines))


__all__ = ["node_group", "serve", "status"]
