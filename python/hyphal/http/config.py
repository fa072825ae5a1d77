"""The HTTP API's options: :class:`HttpConfig`, the ``[http]`` section of the node's config file.

```toml
[http]
listen = "127.0.0.1:0"        # default: loopback, a free port picked once and kept in the data dir
cors_origins = ["http://localhost:5173"]   # default: none (CORS off)
```

``http = false`` turns the API off. It is on by default when the ``http``
extra is installed (``pip install 'hyphal[http]'``); without it the daemon
logs one line saying how to get it and runs without.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from hyphal.errors import InvalidInput

DEFAULT_HTTP_LISTEN = "127.0.0.1:0"


@dataclass(frozen=True, slots=True)
class HttpConfig:
    """Where the daemon serves the HTTP API, and which other web origins may call it."""

    listen: str = DEFAULT_HTTP_LISTEN
    """``host:port``; port 0 picks a free port at first start and keeps it (``http-port`` in the
    data dir), as the node's own listen address does, so a bookmarked URL keeps working."""
    cors_origins: tuple[str, ...] = ()
    """Origins (``scheme://host[:port]``) of web apps allowed to call the API from a browser.
    Empty: CORS is off and only pages the node serves itself may call it."""

    def __post_init__(self) -> None:
        for origin in self.cors_origins:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path not in ("", "/"):
                raise InvalidInput(f"cors_origins: {origin!r} is not an origin like https://app.example")


__all__ = ["DEFAULT_HTTP_LISTEN", "HttpConfig"]
