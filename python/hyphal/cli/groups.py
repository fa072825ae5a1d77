"""``hyphal group ...``: create, join, list, info, invite, close, open, leave and back up groups."""

from __future__ import annotations

from typing import Any

import click

from hyphal.cli.common import call, command_options, emit
from hyphal.errors import InvalidInput


@click.group("group")
def group_group() -> None:
    """Groups of devices that share files."""


def _summary(group: dict[str, Any]) -> str:
    role = ", backup" if group["backup"] else ""
    if group.get("closed"):
        return f"{group['id']}  {group['name']}  (closed here{role}; `hyphal group open` runs it again)"
    return f"{group['id']}  {group['name']}  ({group['members']} members, {group['files']} files{role})"


@group_group.command("create")
@click.argument("name")
@click.option("--as", "member_name", metavar="DEVICE_NAME", help="This device's name in the group.")
@command_options
def create(ctx: click.Context, name: str, member_name: str | None) -> None:
    """Create a group; prints its id and an invite URI (the invite is a secret: share it carefully)."""
    made = call(ctx, "group.create", {"name": name, "member_name": member_name})
    emit(ctx, made, f"created group {made['name']}\nid:     {made['id']}\ninvite: {made['invite']}")


@group_group.command("join")
@click.argument("uri")
@click.option("--as", "member_name", metavar="DEVICE_NAME", help="This device's name in the group.")
@command_options
def join(ctx: click.Context, uri: str, member_name: str | None) -> None:
    """Join a group with an invite URI."""
    joined = call(ctx, "group.join", {"uri": uri, "member_name": member_name})
    reached = joined["reached"]
    note = f"reached {', '.join(reached)}" if reached else "no member reachable yet; the node keeps trying"
    lines = [f"joined group {joined['name']} ({joined['id']}); {note}"]
    lines += [f"not reached: {line}" for line in joined["unreachable"]]
    emit(ctx, joined, "\n".join(lines))


@group_group.command("list")
@command_options
def list_groups(ctx: click.Context) -> None:
    """The groups this node is in (or backs up)."""
    groups = call(ctx, "group.list")
    emit(ctx, groups, "\n".join(_summary(g) for g in groups) if groups else "not in any group")


@group_group.command("info")
@click.argument("group", required=False)
@command_options
def info(ctx: click.Context, group: str | None) -> None:
    """A group's members: names, backup flag and how many files each one's repo holds."""
    found = call(ctx, "group.info", {"group": group})
    lines = [f"group {found['name']}", f"id: {found['id']}", f"members ({len(found['member_list'])}):"]
    for m in found["member_list"]:
        flags = ", ".join(f for f, on in (("this device", m["self"]), ("backup", m["backup"])) if on)
        files = "" if m["backup"] else f"  {m['files']} files"
        lines.append(f"  {m['name']}{files}  {m['key'][:16]}…{f'  ({flags})' if flags else ''}")
    emit(ctx, found, "\n".join(lines))


@group_group.command("invite")
@click.argument("group", required=False)
@command_options
def invite(ctx: click.Context, group: str | None) -> None:
    """Print an invite URI to the group (a secret: whoever holds it can join)."""
    found = call(ctx, "group.invite", {"group": group})
    emit(ctx, found, found["invite"])


def _group_change(name: str, method: str, done: str, doc: str, *, required: bool = False) -> None:
    """``hyphal group NAME [GROUP]``: one control call on a group, and one line saying what it did."""

    @group_group.command(name, help=doc)
    @click.argument("group", required=required)
    @command_options
    def run(ctx: click.Context, group: str | None) -> None:
        result = call(ctx, method, {"group": group})
        emit(ctx, result, f"{done} group {result['name']} ({result['id']})")


_group_change(
    "leave", "group.leave", "left", "Leave a group: members drop this device's repo (its files stay on disk)."
)
_group_change(
    "close",
    "group.close",
    "closed (still a member)",
    "Stop running a group on this node without leaving it (until `hyphal group open`).",
)
_group_change(
    "open", "group.open", "opened", "Run a group closed with `hyphal group close` again.", required=True
)


@group_group.command("backup")
@click.argument("args", nargs=-1, metavar="[GROUP] HOST:PORT")
@command_options
def backup(ctx: click.Context, args: tuple[str, ...]) -> None:
    """Ask the backup server at HOST:PORT to hold the group (it must be authorised for this device)."""
    if len(args) not in (1, 2):
        raise InvalidInput("usage: hyphal group backup [GROUP] HOST:PORT")
    group, address = (None, args[0]) if len(args) == 1 else args
    done = call(ctx, "group.backup", {"group": group, "address": address})
    emit(ctx, done, f"the backup server at {done['address']} now holds group {done['name']}")


__all__ = ["group_group"]
