"""Joining a group: the name from the group info record, and an invite nobody can prove."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest

from hyphal.errors import NotAvailable
from hyphal.groups.invite import Invite
from hyphal.node import Node

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_a_joiner_learns_the_group_name_from_the_dht(tmp_path: Path) -> None:
    async with Node(tmp_path / "a", listen="127.0.0.1:0", name="alice") as a:
        seed = "{}:{}".format(*a.address)
        async with Node(tmp_path / "b", listen="127.0.0.2:0", bootstrap=[seed]):
            ga = await a.create_group("holiday plans")
            await ga.announce()  # done at start too, but by then B may not have been in A's table
            # No name in the invite: the name comes from the sealed group info in the DHT.
            nameless = Invite(ga.keys.group_key, ga.keys.secret or b"", "", ("{}:{}".format(*a.address),))
            async with Node(tmp_path / "d", listen="127.0.0.4:0", bootstrap=[seed], name="dora") as d:
                gd = await d.join_group(nameless.to_uri())
                assert gd.name == "holiday plans"
                assert d.group("holiday plans") is gd


def _closed_port() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{sock.getsockname()[1]}"


async def test_an_invite_nobody_can_prove_is_not_joined(tmp_path: Path) -> None:
    dead = _closed_port()
    invite = Invite(secrets.token_bytes(32), secrets.token_bytes(32), "g", (dead,))
    async with Node(tmp_path / "b", listen="127.0.0.2:0") as b:
        with pytest.raises(NotAvailable, match="could not check the invite") as info:
            await b.join_group(invite.to_uri(), timeout=2)
        assert f"invite peer {dead} (refused the connection" in str(info.value)
        assert b.groups() == []
        assert b.group_manager.closed() == []
