"""``hyphal msg send|watch|status``: the group's ephemeral, end-to-end encrypted message channel."""

from __future__ import annotations

import sys
from typing import Any

import click

from hyphal.cli.common import call, command_options, emit, wants_json
from hyphal.cli.message_lines import message_line
from hyphal.control.protocol import NodeStopped

group_option = click.option("--group", "-g", metavar="GROUP", help="The group (default: the only one).")
topic_option = click.option("--topic", "-t", metavar="TOPIC", help="The message's topic (default: none).")


@click.group("msg")
def msg_group() -> None:
    """Short messages between the group's devices: encrypted, signed, never stored."""


@msg_group.command("send")
@click.argument("text")
@topic_option
@click.option("--ttl", type=float, metavar="SECONDS", help="How long it may take to arrive (default 300).")
@group_option
@command_options
def send(ctx: click.Context, text: str, topic: str | None, ttl: float | None, group: str | None) -> None:
    """Send TEXT to every device of the group (directly, or through a backup server)."""
    sent = call(ctx, "msg.send", {"group": group, "text": text, "topic": topic, "ttl": ttl})
    where = (
        f"to {sent['peers']} peers"
        if sent["peers"]
        else "to no peer yet: it goes to peers that connect before it expires"
    )
    emit(ctx, sent, f"sent message {sent['id'][:16]}… {where}")


@msg_group.command("watch")
@topic_option
@group_option
@command_options
def watch(ctx: click.Context, topic: str | None, group: str | None) -> None:
    """Print every message the group's devices send, as it arrives, until Ctrl-C."""

    def started(body: Any) -> None:
        if isinstance(body, dict) and "watching" in body:
            click.echo(f"watching messages of group {body['name']} ({body['watching']})", err=True)

    def show(event: Any) -> None:
        emit(ctx, event, message_line(event))
        sys.stdout.flush()

    try:
        call(ctx, "msg.watch", {"group": group, "topic": topic}, on_progress=started, on_event=show)
    except KeyboardInterrupt:
        return
    except NodeStopped:
        click.echo("the node stopped; nothing more to watch", err=True)
        return
    if not wants_json(ctx):
        click.echo("the group stopped (left, or the node is stopping)", err=True)


@msg_group.command("status")
@group_option
@command_options
def status(ctx: click.Context, group: str | None) -> None:
    """What the group's message channel has sent, delivered, forwarded and refused."""
    found = call(ctx, "msg.status", {"group": group})
    role = "relay (no key: forwards without reading)" if found["relay"] else "member"
    refused = ", ".join(f"{k} {v}" for k, v in sorted(found["refused"].items())) or "none"
    lines = [
        f"{role}; {len(found['peers'])} peers on the channel; {found['held']} messages held",
        f"sent {found['sent']}, delivered {found['delivered']}, duplicates {found['duplicates']}, "
        f"forwarded {found['forwarded']}; refused: {refused}",
    ]
    emit(ctx, found, "\n".join(lines))


__all__ = ["msg_group"]
