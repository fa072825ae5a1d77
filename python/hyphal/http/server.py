"""The HTTP API's server in the daemon: uvicorn on the daemon's own event loop, beside the control socket.

:func:`serve_http` binds the configured address (port 0: a free port, kept
in ``http-port`` in the data dir so the URL survives restarts, as the node's
own port does), writes the URL it serves at to ``http-url`` (which
``hyphal open`` reads), and runs until cancelled. uvicorn is driven through
its ``startup``/``shutdown`` steps rather than ``serve``, which would install
its own SIGINT/SIGTERM handlers over the daemon's; on the way out the
stopping event ends every open event stream first, so shutdown does not wait
on clients that never hang up.
"""

from __future__ import annotations

import errno
import logging
import socket
from pathlib import Path

import anyio
import anyio.abc

from hyphal.files import write_atomically
from hyphal.http.access import URL_FILE, load_or_create_token
from hyphal.http.app import build_app
from hyphal.http.config import HttpConfig
from hyphal.http.framework import uvicorn
from hyphal.http.methods import Context
from hyphal.http.uploads import clear_uploads
from hyphal.net.address import format_address, parse_address
from hyphal.node import Node

log = logging.getLogger("hyphal.http")

PORT_FILE = "http-port"
GRACE_SECONDS = 3
"""How long a stopping daemon lets requests in flight finish before it cancels them."""


def _bind(data_dir: Path, listen: str) -> socket.socket:
    host, port = parse_address(listen, allow_port_zero=True)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tries = [port]
    if port == 0:
        try:
            remembered = int((data_dir / PORT_FILE).read_text().strip())
            tries = [remembered, 0] if 0 < remembered < 65536 else [0]
        except (FileNotFoundError, ValueError):
            pass
    for i, want in enumerate(tries):
        try:
            return socket.create_server((host, want), family=family, backlog=128)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE or i == len(tries) - 1:
                raise
            log.warning("http: port %d, used last time, is taken now; serving on a new one", want)
    raise AssertionError("unreachable")


async def serve_http(
    node: Node, config: HttpConfig, *, task_status: anyio.abc.TaskStatus[str] = anyio.TASK_STATUS_IGNORED
) -> None:
    """Serve the API for ``node`` until cancelled; ``task_status`` gets the URL once it listens."""
    data_dir = node.data_dir
    token = load_or_create_token(data_dir)
    clear_uploads(data_dir)
    sock = _bind(data_dir, config.listen)
    host, port = sock.getsockname()[:2]
    if parse_address(config.listen, allow_port_zero=True)[1] == 0:
        write_atomically(data_dir / PORT_FILE, f"{port}\n".encode())
    url = f"http://{format_address((host, port))}"
    stopping = anyio.Event()
    app = build_app(Context(node, stopping), token=token, port=port, cors_origins=config.cors_origins)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            lifespan="off",
            access_log=False,  # a GET may carry the token in its query: no line logs it
            log_config=None,  # the daemon's logging, not uvicorn's
            timeout_graceful_shutdown=GRACE_SECONDS,
            proxy_headers=False,
        )
    )
    server.config.load()
    server.lifespan = server.config.lifespan_class(server.config)
    try:
        await server.startup(sockets=[sock])
        write_atomically(data_dir / URL_FILE, f"{url}\n".encode())
        log.info("HTTP API on %s (`hyphal open` opens it)", url)
        task_status.started(url)
        await anyio.sleep_forever()
    finally:
        (data_dir / URL_FILE).unlink(missing_ok=True)
        with anyio.CancelScope(shield=True):
            stopping.set()
            if server.started:
                await server.shutdown(sockets=[sock])
            sock.close()


__all__ = ["PORT_FILE", "serve_http"]
