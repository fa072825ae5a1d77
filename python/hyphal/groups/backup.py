"""Asking a backup server to hold a group: the member's side of ``hyphal/backup/1``.

A member opens the channel (id: the group's discovery key) on a connection
to the backup server and sends ``REQUEST`` with the group's grant (§14.3)
and name. The server answers ``OK`` if the member's device key (from the
connection's handshake) is one it was told to serve, else ``ERROR``; its
side is :meth:`GroupManager.handle_backup_channel
<hyphal.groups.manager.GroupManager.handle_backup_channel>`. The messages are
in :mod:`hyphal.groups.messages` (docs/PROTOCOL.md §14.8).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio

from hyphal.errors import HyphalError, ProtocolError, Unauthorized
from hyphal.groups.messages import BackupRequest, decode_reply
from hyphal.net.connection import Connection

if TYPE_CHECKING:
    from hyphal.groups.group import Group

PROTOCOL = "hyphal/backup/1"
BACKUP_TIMEOUT = 30.0


async def request_backup(group: Group, connection: Connection) -> None:
    """Ask the backup server at the other end of ``connection`` to hold ``group``.

    :class:`Unauthorized` if it refuses, :class:`ProtocolError` if it answers nonsense.
    """
    channel = await connection.open_channel(PROTOCOL, group.keys.discovery_key)
    async with channel:
        with anyio.fail_after(BACKUP_TIMEOUT):
            await channel.wait_open()
            await channel.send(BackupRequest(group.keys.grant(), group.name).encode())
            try:
                reply = decode_reply(await channel.receive())
            except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                raise ProtocolError("the peer is not a backup server (it closed the request)") from None
            except HyphalError as exc:
                raise ProtocolError(f"the backup server's reply is malformed: {exc}") from None
    if reply.error is not None:
        raise Unauthorized(f"the backup server refused: {reply.error}")
    await group.attach(connection)


__all__ = ["BACKUP_TIMEOUT", "PROTOCOL", "request_backup"]
