"""``hyphal pair ...`` and ``hyphal device ...``: pair a new device, approve it, list and remove devices."""

from __future__ import annotations

import os
from pathlib import Path

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
from hyphal.errors import InvalidInput
from hyphal.groups.device_bundle import open_bundle
from hyphal.groups.state import GroupFile
from hyphal.keystore import save_identity
from hyphal.node import GROUPS_FILE

PAIR_PASSWORD_ENV = "HYPHAL_PAIR_PASSWORD"
DEVICE_PASSPHRASE_ENV = "HYPHAL_DEVICE_PASSPHRASE"
GROUP_OPTION = click.option("--group", "group", metavar="GROUP", help="The group (id prefix or name).")


@click.group("pair")
def pair_group() -> None:
    """Pair a new device into a group: a code or password, then an approval."""


@pair_group.command("code")
@GROUP_OPTION
@command_options
def code(ctx: click.Context, group: str | None) -> None:
    """Show a one-time code for a new device (valid ten minutes, one use)."""
    made = call(ctx, "pair.code", {"group": group})
    emit(
        ctx,
        made,
        f"pairing code for group {made['name']}: {made['code']}\n"
        f"on the new device: hyphal pair join {made['account']} --code {made['code']}",
    )


@pair_group.command("password")
@GROUP_OPTION
@command_options
def password(ctx: click.Context, group: str | None) -> None:
    """Set the account password new devices may sign in with (read from $HYPHAL_PAIR_PASSWORD)."""
    secret = os.environ.get(PAIR_PASSWORD_ENV)
    if not secret:
        raise InvalidInput(f"set the password in ${PAIR_PASSWORD_ENV}")
    done = call(ctx, "pair.password", {"group": group, "password": secret})
    emit(ctx, done, f"password set for account {done['account']}")


@pair_group.command("join")
@click.argument("account")
@click.option("--code", "pair_code", metavar="CODE", help="The one-time code an authorised device shows.")
@click.option(
    "--password", "use_password", is_flag=True, help=f"Use the account password (${PAIR_PASSWORD_ENV})."
)
@click.option("--as", "member_name", metavar="DEVICE_NAME", help="This device's name in the group.")
@click.option("--peer", metavar="HOST:PORT", help="An authorised device's address (else found in the DHT).")
@command_options
def join(
    ctx: click.Context,
    account: str,
    pair_code: str | None,
    use_password: bool,
    member_name: str | None,
    peer: str | None,
) -> None:
    """Sign in to ACCOUNT (a group id): join read-only, and ask the authorised devices to approve."""
    params: dict[str, object] = {"account": account, "member_name": member_name, "peer": peer}
    if use_password == (pair_code is not None):
        raise InvalidInput("give --code CODE or --password")
    if use_password:
        secret = os.environ.get(PAIR_PASSWORD_ENV)
        if not secret:
            raise InvalidInput(f"--password reads the password from ${PAIR_PASSWORD_ENV}")
        params["password"] = secret
    else:
        params["code"] = pair_code
    joined = call(ctx, "pair.join", params)
    emit(
        ctx,
        joined,
        f"joined group {joined['name']} ({joined['id']}) read-only\n"
        f"asked to write: request {joined['request']}, verification code {joined['code']}\n"
        "approve it on an authorised device: hyphal pair approve " + joined["request"],
    )


@pair_group.command("request")
@GROUP_OPTION
@command_options
def request(ctx: click.Context, group: str | None) -> None:
    """Ask the authorised devices again to approve this device."""
    sent = call(ctx, "pair.request", {"group": group})
    emit(ctx, sent, f"asked to write: request {sent['request']}, verification code {sent['code']}")


@pair_group.command("requests")
@GROUP_OPTION
@command_options
def requests(ctx: click.Context, group: str | None) -> None:
    """Pending requests to write, with the code the asking device shows."""
    found = call(ctx, "pair.requests", {"group": group})
    lines = [f"{r['id']}  {r['name']}  code {r['code']}" for r in found]
    emit(ctx, found, "\n".join(lines) if lines else "no pending requests")


@pair_group.command("approve")
@click.argument("request_id")
@GROUP_OPTION
@command_options
def approve(ctx: click.Context, request_id: str, group: str | None) -> None:
    """Approve a request: the device becomes a writer on every member."""
    done = call(ctx, "pair.approve", {"group": group, "request": request_id})
    emit(ctx, done, f"approved {done['name']} ({done['id']})")


@pair_group.command("deny")
@click.argument("request_id")
@GROUP_OPTION
@command_options
def deny(ctx: click.Context, request_id: str, group: str | None) -> None:
    """Deny a request: the device stays read-only."""
    done = call(ctx, "pair.deny", {"group": group, "request": request_id})
    emit(ctx, done, f"denied {done['name']} ({done['id']})")


@click.group("device")
def device_group() -> None:
    """A group's devices: who writes, who reads, who was removed."""


@device_group.command("ls")
@GROUP_OPTION
@command_options
def ls(ctx: click.Context, group: str | None) -> None:
    """The group's devices as its membership log has them."""
    found = call(ctx, "device.ls", {"group": group})
    lines = [f"group {found['name']}" + ("" if found["log"] else " (no membership log: every member writes)")]
    for d in found["devices"]:
        mark = "  (this device)" if d["self"] else ""
        lines.append(f"  {d['id']}  {d['role']:<9}  {d['name']}{mark}")
    emit(ctx, found, "\n".join(lines))


@device_group.command("rm")
@click.argument("device")
@GROUP_OPTION
@command_options
def rm(ctx: click.Context, device: str, group: str | None) -> None:
    """Remove DEVICE (an id from `hyphal device ls`): its later writes are refused by every member."""
    done = call(ctx, "device.rm", {"group": group, "device": device})
    emit(ctx, done, f"removed device {done['id']}; its first {done['repo_length']} repo entries stay")


@device_group.command("export")
@click.argument("dest", type=click.Path(path_type=Path))
@command_options
def export(ctx: click.Context, dest: Path) -> None:
    """Write this device's identity and groups to DEST, sealed under $HYPHAL_DEVICE_PASSPHRASE."""
    passphrase = _bundle_passphrase()
    done = call(ctx, "device.export", {"passphrase": passphrase, "dest": str(dest.absolute())})
    emit(
        ctx,
        done,
        f"exported device {done['public_key'][:16]}… and {len(done['groups'])} groups to {done['dest']}",
    )


@device_group.command("import")
@click.argument("source", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--passphrase-env", is_flag=True, help=f"Seal the imported identity under ${PASSPHRASE_ENV}.")
@json_option
@click.pass_context
@user_errors
def import_(ctx: click.Context, source: Path, passphrase_env: bool) -> None:
    """Continue as the device exported to SOURCE, in this new, empty data dir (no daemon running)."""
    found = config(ctx)
    if found.identity_path.exists():
        raise InvalidInput(
            f"{found.identity_path} exists: this data dir is a device already; import into a new data dir"
        )
    bundle = open_bundle(source.read_bytes(), _bundle_passphrase())
    for record in bundle.groups:
        record.restore_repo = record.secret is not None  # a member device's own repo comes back first
    save_identity(found.identity_path, bundle.identity, passphrase_from_env(passphrase_env))
    GroupFile(found.data_dir / GROUPS_FILE, bundle.identity).save(bundle.groups)
    public = bundle.identity.public_key.hex()
    emit(
        ctx,
        {"public_key": public, "groups": [r.name for r in bundle.groups], "data_dir": str(found.data_dir)},
        f"imported device {public[:16]}… with {len(bundle.groups)} groups into {found.data_dir}; "
        "run the node: its repos and files come back from the groups' members",
    )


def _bundle_passphrase() -> str:
    passphrase = os.environ.get(DEVICE_PASSPHRASE_ENV)
    if not passphrase:
        raise InvalidInput(f"set the bundle's passphrase in ${DEVICE_PASSPHRASE_ENV}")
    return passphrase


__all__ = ["device_group", "pair_group"]
