"""PEP 562 lazy package faces: a package names its exports without importing them.

A package ``__init__`` that imported its I/O modules eagerly would drag anyio
and sqlite3 into every sans-I/O module beneath it (importing
``hyphal.dht.routing`` runs ``hyphal/dht/__init__.py`` first). With
:func:`lazy_exports` each name is imported on first use instead, so a pure
module costs only what it imports itself (``tests/test_layering.py`` checks).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose ``exports`` map a name to the
    module (relative to the package, e.g. ``".feed"``) that defines it."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        globals_of_package = importlib.import_module(package).__dict__
        globals_of_package[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted({*importlib.import_module(package).__dict__, *exports})

    return __getattr__, __dir__
