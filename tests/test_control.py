"""The control protocol against an in-process server: bad input gets typed errors, never a crash."""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest

from hyphal.control.protocol import MAX_LINE, socket_path
from hyphal.control.server import ControlServer, bind
from hyphal.errors import InvalidInput
from hyphal.node import Node

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def control(tmp_path: Path) -> AsyncIterator[Path]:
    """A node with its control server; yields the data dir."""
    data = tmp_path / "n"
    data.mkdir()
    listener = await bind(data)
    async with listener, Node(data) as node, anyio.create_task_group() as tg:
        tg.start_soon(ControlServer(node, listener).serve)
        yield data
        tg.cancel_scope.cancel()


class Conn:
    def __init__(self, stream: anyio.abc.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    async def send(self, raw: bytes) -> None:
        await self.stream.send(raw)

    async def receive(self) -> dict[str, Any]:
        with anyio.fail_after(10):
            while b"\n" not in self.buffer:
                self.buffer += await self.stream.receive()
        line, self.buffer = self.buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message


async def connect(data: Path) -> Conn:
    return Conn(await anyio.connect_unix(socket_path(data)))


async def test_bad_requests_get_typed_errors_and_the_server_keeps_serving(control: Path) -> None:
    conn = await connect(control)
    cases = [
        (b"not json\n", None, "DecodeError"),
        (b"[1, 2]\n", None, "DecodeError"),
        (b'{"id": 1, "method": "no.such"}\n', 1, "InvalidInput"),
        (b'{"id": 2, "method": "group.create", "params": {"name": 5}}\n', 2, "InvalidInput"),
        (b'{"id": 3, "method": "group.list", "params": {"extra": true}}\n', 3, "InvalidInput"),
        (b'{"id": 4, "method": "group.create", "params": []}\n', 4, "InvalidInput"),
        (b'{"id": 5, "method": "files.list"}\n', 5, "NotAvailable"),  # not in any group
        (b'{"id": 6, "method": "group.join", "params": {"uri": "hyphal://group/x?s=y"}}\n', 6, "DecodeError"),
    ]
    for raw, request_id, kind in cases:
        await conn.send(raw)
        reply = await conn.receive()
        assert reply["id"] == request_id
        assert reply["error"]["type"] == kind, reply
    await conn.send(b'{"id": 7, "method": "status"}\n')
    assert (await conn.receive())["result"]["groups"] == []


async def test_an_oversized_line_is_refused_and_closes_only_that_connection(control: Path) -> None:
    conn = await connect(control)
    await conn.send(b"x" * (MAX_LINE + 10))
    reply = await conn.receive()
    assert reply["id"] is None
    assert reply["error"]["type"] == "InvalidInput"
    other = await connect(control)
    await other.send(b'{"id": "a", "method": "group.list"}\n')
    assert await other.receive() == {"id": "a", "result": []}


async def test_the_socket_is_private_and_one_daemon_per_data_dir(control: Path) -> None:
    assert stat.S_IMODE(socket_path(control).stat().st_mode) == 0o600
    with pytest.raises(InvalidInput, match="already running"):
        await bind(control)
