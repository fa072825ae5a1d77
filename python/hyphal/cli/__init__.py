"""The ``hyphal`` command line (console script ``hyphal``).

``init`` and ``id`` work on the data dir directly; ``node run`` and ``serve``
run the daemon; every other command asks the daemon running in the data dir,
over its control socket (:mod:`hyphal.control`). Every command takes
``--json`` for scripts. A user mistake (a missing file, a bad passphrase, an
unknown config key, no daemon running) is one line on stderr and a non-zero
exit, never a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from hyphal.cli import blobs, dht, feeds, files, groups, node, records, values
from hyphal.cli import messages as messages
from hyphal.cli import pairing as pairing
from hyphal.cli import secrets as secrets
from hyphal.cli.common import PASSPHRASE_ENV, emit, json_option, passphrase_from_env, user_errors
from hyphal.cli.common import config as config_of
from hyphal.cli.http import http_group, open_command
from hyphal.config import NodeConfig
from hyphal.dht.ids import node_id
from hyphal.errors import InvalidInput
from hyphal.keystore import identity_is_sealed, identity_public_key, load_or_create_identity


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML config file.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where the node keeps its data.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@user_errors
def cli(ctx: click.Context, config_path: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """hyphal: peer-to-peer, end-to-end encrypted replication."""
    ctx.obj = {"config": NodeConfig.load(config_path, data_dir=data_dir), "json": as_json}


@cli.command()
@json_option
@click.option(
    "--passphrase-env",
    is_flag=True,
    help=f"Seal the identity under the passphrase in ${PASSPHRASE_ENV}.",
)
@click.pass_context
@user_errors
def init(ctx: click.Context, passphrase_env: bool) -> None:
    """Create this node's identity in its data dir (keeps an existing one)."""
    config = config_of(ctx)
    passphrase = passphrase_from_env(passphrase_env)
    keypair, created = load_or_create_identity(config.identity_path, passphrase)
    public = keypair.public_key.hex()
    what = "created" if created else "already there"
    emit(
        ctx,
        {"created": created, "public_key": public, "data_dir": str(config.data_dir)},
        f"identity {what}: {public}\ndata dir: {config.data_dir}",
    )


@cli.command("id")
@json_option
@click.pass_context
@user_errors
def show_id(ctx: click.Context) -> None:
    """Show this node's public key and DHT node id (no passphrase needed)."""
    path = config_of(ctx).identity_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no identity at {path}; run `hyphal init` first") from None
    public = identity_public_key(data)
    nid = node_id(public).hex()
    emit(
        ctx,
        {"public_key": public.hex(), "node_id": nid, "sealed": identity_is_sealed(data)},
        f"public key: {public.hex()}\nnode id:    {nid}",
    )


for command in (
    node.node_group,
    node.serve,
    node.status,
    groups.group_group,
    files.add,
    files.ls,
    files.get,
    files.rm,
    files.sync,
    files.watch,
    feeds.feed_group,
    blobs.blob_group,
    records.record_group,
    values.value_group,
    dht.dht_group,
    dht.peers,
    secrets.secret_group,
    http_group,
    open_command,
    messages.msg_group,
    pairing.pair_group,
    pairing.device_group,
):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="hyphal")


if __name__ == "__main__":
    main()


__all__ = ["cli", "main"]
