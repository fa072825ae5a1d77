"""The ``hyphal`` command line (console script ``hyphal``).

Every command takes ``--json`` for scripts. A user mistake (a missing file,
a bad passphrase, an unknown config key) is one line on stderr and a
non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from hyphal.config import Config
from hyphal.dht.ids import node_id
from hyphal.errors import HyphalError, InvalidInput
from hyphal.keystore import identity_is_sealed, identity_public_key, load_or_create_identity

P = ParamSpec("P")
R = TypeVar("R")
PASSPHRASE_ENV = "HYPHAL_PASSPHRASE"


def _user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Our typed errors and OS errors become one line on stderr and exit status 1."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (HyphalError, OSError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
            raise click.ClickException(f"{message}{where}") from None

    return run


def _emit(ctx: click.Context, data: dict[str, Any], text: str) -> None:
    click.echo(json.dumps(data, sort_keys=True) if ctx.obj["json"] else text)


def _config(ctx: click.Context) -> Config:
    config: Config = ctx.obj["config"]
    return config


@click.group()
@click.option("--config", "config_path", type=click.Path(path_type=Path), help="TOML config file.")
@click.option("--data-dir", type=click.Path(path_type=Path), help="Where the node keeps its data.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
@_user_errors
def cli(ctx: click.Context, config_path: Path | None, data_dir: Path | None, as_json: bool) -> None:
    """hyphal: peer-to-peer, end-to-end encrypted replication."""
    ctx.obj = {"config": Config.load(config_path, data_dir=data_dir), "json": as_json}


@cli.command()
@click.option(
    "--passphrase-env",
    is_flag=True,
    help=f"Seal the identity under the passphrase in ${PASSPHRASE_ENV}.",
)
@click.pass_context
@_user_errors
def init(ctx: click.Context, passphrase_env: bool) -> None:
    """Create this node's identity in its data dir (keeps an existing one)."""
    config = _config(ctx)
    passphrase = None
    if passphrase_env:
        passphrase = os.environ.get(PASSPHRASE_ENV)
        if not passphrase:
            raise InvalidInput(f"--passphrase-env needs ${PASSPHRASE_ENV} set")
    keypair, created = load_or_create_identity(config.identity_path, passphrase)
    public = keypair.public_key.hex()
    what = "created" if created else "already there"
    _emit(
        ctx,
        {"created": created, "public_key": public, "data_dir": str(config.data_dir)},
        f"identity {what}: {public}\ndata dir: {config.data_dir}",
    )


@cli.command("id")
@click.pass_context
@_user_errors
def show_id(ctx: click.Context) -> None:
    """Show this node's public key and DHT node id (no passphrase needed)."""
    path = _config(ctx).identity_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput(f"no identity at {path}; run `hyphal init` first") from None
    public = identity_public_key(data)
    nid = node_id(public).hex()
    _emit(
        ctx,
        {"public_key": public.hex(), "node_id": nid, "sealed": identity_is_sealed(data)},
        f"public key: {public.hex()}\nnode id:    {nid}",
    )


def main() -> None:
    cli(prog_name="hyphal")


if __name__ == "__main__":
    main()


__all__ = ["cli", "main"]
