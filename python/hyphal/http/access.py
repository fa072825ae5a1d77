"""What the CLI reads of a node's HTTP API from its data dir: the bearer token and the URL it serves at.

The token is one random secret in the data dir (mode 0600), made at first use.

Whoever can read the data dir can already run the node, so the token gives
nothing new to the node's own user; it keeps out other local users and web
pages, which cannot read the file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

TOKEN_NAME = "http-token"
URL_FILE = "http-url"
"""Written by the running daemon once it serves the API, removed when it stops."""
TOKEN_BYTES = 32


def token_path(data_dir: Path) -> Path:
    return data_dir / TOKEN_NAME


def load_or_create_token(data_dir: Path) -> str:
    """The token kept in ``data_dir``, created (0600, written whole) if there is none yet."""
    path = token_path(data_dir)
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        text = ""
    if text:
        return text
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    tmp = path.with_name(f".{TOKEN_NAME}.{secrets.token_hex(4)}")
    # O_EXCL with mode 0600: no moment at which another user could read it.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(token + "\n")
            out.flush()
            os.fsync(out.fileno())
        # link, not replace: of two first starts racing, the first token wins and both use it.
        try:
            os.link(tmp, path)
        except FileExistsError:
            return path.read_text(encoding="ascii").strip()
    finally:
        tmp.unlink(missing_ok=True)
    return token


def read_url(data_dir: Path) -> str | None:
    """Where the daemon running in ``data_dir`` serves the API; None if it does not."""
    try:
        return (data_dir / URL_FILE).read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None


__all__ = ["TOKEN_NAME", "URL_FILE", "load_or_create_token", "read_url", "token_path"]
