"""A group's files: ``add``, ``ls``, ``get``, ``rm``, ``sync`` and ``watch``."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from hyphal.cli.common import call, command_options, emit, human_size, wants_json
from hyphal.cli.message_lines import message_line
from hyphal.cli.progress import ByteBar
from hyphal.control.protocol import NodeStopped

group_option = click.option("--group", "-g", metavar="GROUP", help="The group (default: the only one).")


@click.command("add")
@click.argument("path", type=click.Path(path_type=Path))
@click.option("--as", "name", metavar="NAME", help="Its name in the group (default: the file's name).")
@click.option("--private", is_flag=True, help="Only members can read it, not backup servers.")
@group_option
@command_options
def add(ctx: click.Context, path: Path, name: str | None, private: bool, group: str | None) -> None:
    """Add a file to this device's repo in the group."""
    # The daemon runs on this machine and imports the file itself, by absolute path.
    params = {"group": group, "path": str(path.absolute()), "name": name, "private": private}
    added = call(ctx, "files.add", params)
    emit(ctx, added, f"added {added['name']} ({human_size(added['size'])}, {added['hash'][:16]}…)")


def _file_line(f: dict[str, Any]) -> str:
    flags = [flag for flag, on in (("private", f["private"]), ("not here", not f.get("local", True))) if on]
    extra = f"  ({', '.join(flags)})" if flags else ""
    return f"{f['name']}  {human_size(f['size'])}  {f['member_name']}{extra}"


@click.command("ls")
@group_option
@command_options
def ls(ctx: click.Context, group: str | None) -> None:
    """Every file in every member's repo."""
    files = call(ctx, "files.list", {"group": group})
    emit(ctx, files, "\n".join(_file_line(f) for f in files) if files else "no files")


@click.command("get")
@click.argument("name")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Where to write it (default: ./NAME).")
@group_option
@command_options
def get(ctx: click.Context, name: str, output: Path | None, group: str | None) -> None:
    """Write a file of the group here, fetching it from members first if need be."""
    dest = (output or Path(Path(name).name)).absolute()
    with ByteBar(f"getting {name}") as bar:
        params = {"group": group, "name": name, "dest": str(dest)}
        got = call(ctx, "files.get", params, on_progress=bar.update)
    emit(ctx, got, f"wrote {got['name']} ({human_size(got['size'])}) to {got['dest']}")


@click.command("rm")
@click.argument("name")
@group_option
@command_options
def rm(ctx: click.Context, name: str, group: str | None) -> None:
    """Remove a file from this device's repo."""
    removed = call(ctx, "files.remove", {"group": group, "name": name})
    emit(ctx, removed, f"removed {removed['name']}")


@click.command("sync")
@group_option
@command_options
def sync(ctx: click.Context, group: str | None) -> None:
    """Fetch every member's repo and every file they hold, from every reachable member."""
    with ByteBar("sync") as bar:
        result = call(ctx, "sync", {"group": group}, on_progress=bar.update)
    reached = ", ".join(result["reached"]) or "nobody"
    lines = [
        f"synced: {result['members']} members, {result['repos']} repos, {result['files']} files, "
        f"{result['files_fetched']} fetched ({human_size(result['bytes_fetched'])}); reached {reached}"
    ]
    lines += [f"not reached: {line}" for line in result["unreachable"]]
    lines += [f"missing (no reachable peer has it): {m}" for m in result["missing"]]
    emit(ctx, result, "\n".join(lines))
    if result["fetched_nothing_known"]:
        # The result went to stdout; the failure is the exit status and one line on stderr.
        if result["missing"]:
            why = f"{len(result['missing'])} file(s) missing and no reachable peer has them"
        else:
            why = "no other member could be reached"
        raise click.ClickException(f"nothing fetched: {why}; retry when a member is online")


def event_line(event: dict[str, Any]) -> str:
    kind = event["type"]
    if kind == "file_added":
        return f"file added: {event['member_name']}/{event['name']} ({human_size(event['size'])})"
    if kind == "file_removed":
        return f"file removed: {event['member_name']}/{event['name']}"
    if kind == "member_joined":
        return f"member joined: {event['name']}{' (backup)' if event['backup'] else ''}"
    if kind == "member_left":
        return f"member left: {event['name']}"
    if kind == "repo_added":
        return f"following the repo of {event['name']}"
    if kind == "message":
        return message_line(event)
    return str(event)


@click.command("watch")
@group_option
@command_options
def watch(ctx: click.Context, group: str | None) -> None:
    """Print every change in the group as it happens, until Ctrl-C."""

    def started(body: Any) -> None:
        if isinstance(body, dict) and "watching" in body:
            click.echo(f"watching group {body['name']} ({body['watching']}); Ctrl-C to stop", err=True)

    def show(event: Any) -> None:
        emit(ctx, event, event_line(event))
        sys.stdout.flush()

    try:
        call(ctx, "watch", {"group": group}, on_progress=started, on_event=show)
    except KeyboardInterrupt:
        return
    except NodeStopped:
        # The node going away ends the watch as the group closing does: it is the end of the
        # stream, not a failed command (as `docker logs -f` ends when its container stops).
        click.echo("the node stopped; nothing more to watch", err=True)
        return
    if not wants_json(ctx):
        click.echo("the group stopped (left, or the node is stopping)", err=True)


__all__ = ["add", "event_line", "get", "ls", "rm", "sync", "watch"]
