"""The node daemon: a :class:`~hyphal.node.Node` with the control server, until a signal.

Its identity lives in the data dir, and so does the port it picked when told
to listen on port 0: a restart listens on the same port again, so peers and
invites that know its address still reach it (unless another program took
the port meanwhile; then it picks a new one and says so).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from hyphal.config import NodeConfig
from hyphal.control.protocol import socket_path
from hyphal.control.server import ControlServer, bind
from hyphal.files import write_atomically
from hyphal.http.start import start_http
from hyphal.net.address import format_address, parse_address
from hyphal.node import Node

log = logging.getLogger("hyphal.daemon")

PORT_FILE = "listen-port"


@dataclass(frozen=True, slots=True)
class DaemonOptions:
    config: NodeConfig
    """Every option of the node (the config file's, with the command line's on top)."""
    backup_for: frozenset[bytes] | None = None
    """Device keys this node backs groups up for; ``None``: not a backup server."""
    passphrase: str | None = None

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir


def _remembered_port(data_dir: Path) -> int | None:
    try:
        text = (data_dir / PORT_FILE).read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text.isdigit() and 0 < int(text) < 65536 else None


def _node(options: DaemonOptions, listen: str) -> Node:
    return Node(
        config=options.config, listen=listen, passphrase=options.passphrase, backup_for=options.backup_for
    )


async def _start_node(stack: contextlib.AsyncExitStack, options: DaemonOptions) -> Node:
    host, port = parse_address(options.config.listen, allow_port_zero=True)
    remembered = _remembered_port(options.data_dir) if port == 0 else None
    if remembered is not None:
        try:
            return await stack.enter_async_context(_node(options, format_address((host, remembered))))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            log.warning("port %d, used last time, is taken now; listening on a new one", remembered)
    node = await stack.enter_async_context(_node(options, options.config.listen))
    if port == 0:
        write_atomically(options.data_dir / PORT_FILE, f"{node.address[1]}\n".encode())
    return node


async def run_daemon(options: DaemonOptions, on_ready: Callable[[Node], None]) -> None:
    """Run until SIGINT or SIGTERM; ``on_ready`` once the node and the control socket are up.

    :class:`~hyphal.errors.InvalidInput` if a daemon already runs in the data dir.
    """
    options.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    async with contextlib.AsyncExitStack() as stack:
        # The node first: it holds the data dir's lock, so a second daemon stops there,
        # before it could replace the first one's control socket.
        node = await _start_node(stack, options)
        listener = await bind(options.data_dir)
        try:
            async with listener, anyio.create_task_group() as tg:
                await tg.start(_stop_on_signal, tg.cancel_scope)
                tg.start_soon(ControlServer(node, listener).serve)
                await start_http(tg, node, options.config.http)
                on_ready(node)
            log.info("stopping")
        finally:
            socket_path(options.data_dir).unlink(missing_ok=True)


async def _stop_on_signal(
    scope: anyio.CancelScope, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        task_status.started()
        async for received in signals:
            log.info("%s received", signal.Signals(received).name)
            scope.cancel()
            return


__all__ = ["PORT_FILE", "DaemonOptions", "run_daemon"]
