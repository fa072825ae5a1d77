"""Optional dependency groups ("extras") and the one way to import from them.

A core install (``pip install hyphal``) runs a node; the HTTP API, LAN discovery
and the mainline DHT bridge pull packages only their users need. Code that uses
one imports it through :func:`require`, so a missing package is a
:class:`~hyphal.errors.MissingExtra` naming the extra to install, not a bare
``ModuleNotFoundError`` from deep inside a feature.
"""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from hyphal.errors import MissingExtra

# extra name -> the top-level modules it provides; pyproject.toml's
# [project.optional-dependencies] must list the packages that provide them.
EXTRAS: dict[str, tuple[str, ...]] = {
    "http": ("fastapi", "uvicorn", "sse_starlette", "multipart"),
    "lan": ("zeroconf", "dns"),
    "mainline": ("fastbencode", "google_crc32c"),
}


def require(extra: str, module: str, feature: str) -> ModuleType:
    """Import ``module`` from the optional group ``extra``, or raise :class:`MissingExtra`.

    ``feature`` is what the user asked for ("the HTTP API"), so the message says
    why the package is needed, not only that it is missing.
    """
    if extra not in EXTRAS:
        raise ValueError(f"unknown extra {extra!r}")
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        # Only a missing *optional* package becomes MissingExtra; a module of
        # ours that fails to import is a bug and keeps its own traceback.
        if exc.name is not None and exc.name.split(".")[0] == module.split(".")[0]:
            raise MissingExtra(extra, feature, module) from exc
        raise


def available(extra: str) -> bool:
    """Whether every module of ``extra`` can be imported (for help texts and status)."""
    return all(importlib.util.find_spec(name) is not None for name in EXTRAS[extra])


__all__ = ["EXTRAS", "available", "require"]
