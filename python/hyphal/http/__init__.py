"""The node's local HTTP API: the control methods over HTTP, with an OpenAPI document (FastAPI, uvicorn).

:mod:`.config` holds its options (``[http]``), :mod:`.access` the token and
URL files the CLI reads, :mod:`.start` the daemon's one call into it, and
:mod:`.server` the uvicorn driver. :mod:`.app` builds the FastAPI app from
the routes (:mod:`.routes_node`, :mod:`.routes_groups`, :mod:`.routes_data`),
which run the registered control methods (:mod:`.methods`); :mod:`.guard`
checks Host, Origin and the token, :mod:`.problems` maps errors to problem
bodies, :mod:`.streams` serves event streams, :mod:`.uploads` and
:mod:`.downloads` stream files. Only this face, :mod:`.config`,
:mod:`.access` and :mod:`.start` import without the ``http`` extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hyphal._lazy import lazy_exports

if TYPE_CHECKING:
    from hyphal.http.access import load_or_create_token, read_url
    from hyphal.http.config import HttpConfig

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "HttpConfig": ".config",
        "load_or_create_token": ".access",
        "read_url": ".access",
    },
)

__all__ = ["HttpConfig", "load_or_create_token", "read_url"]
