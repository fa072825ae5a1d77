"""The daemon's one call into the HTTP API: start it if it is configured and installed.

Kept apart from :mod:`.server` so the daemon imports FastAPI only when it
will serve: a node without the ``http`` extra runs as before, with one log
line saying how to get the API.
"""

from __future__ import annotations

import logging

import anyio.abc

from hyphal import extras
from hyphal.http.access import URL_FILE
from hyphal.http.config import HttpConfig
from hyphal.node import Node

log = logging.getLogger("hyphal.http")


async def start_http(tg: anyio.abc.TaskGroup, node: Node, config: HttpConfig | None) -> str | None:
    """Serve the API in ``tg``; its URL, or None when ``[http]`` is off or the extra is missing."""
    # A daemon killed while serving left its URL behind: it must not say an API is there.
    (node.data_dir / URL_FILE).unlink(missing_ok=True)
    if config is None:
        return None
    if not extras.available("http"):
        log.info("HTTP API off: it needs the http extra (pip install 'hyphal[http]')")
        return None
    from hyphal.http.server import serve_http

    url: str = await tg.start(serve_http, node, config)
    return url


__all__ = ["start_http"]
