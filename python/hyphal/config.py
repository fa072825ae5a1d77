"""The node's configuration: a TOML file with defaults, and where a node keeps its data.

Every key is optional; a missing file means all defaults. Unknown keys and
values of the wrong type are errors (:class:`~hyphal.errors.InvalidInput`)
that name the key, so a typo never silently falls back to a default.

```toml
data_dir = "/var/lib/hyphal"          # default: the user's data directory
listen = "0.0.0.0:7300"               # TCP for connections, UDP for the DHT
bootstrap = ["seed.example:7300"]     # DHT seeds
backup_authorize = ["<device key hex>"]  # `hyphal serve --backup` backs up groups for these
```
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

import platformdirs

from hyphal.errors import InvalidInput

CONFIG_NAME = "config.toml"
IDENTITY_NAME = "identity"
DEFAULT_LISTEN = "0.0.0.0:7300"
T = TypeVar("T")


def default_data_dir() -> Path:
    """Where a node keeps its data unless told otherwise (``~/.local/share/hyphal`` on Linux)."""
    return Path(platformdirs.user_data_dir("hyphal", appauthor=False))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("hyphal", appauthor=False)) / CONFIG_NAME


@dataclass(frozen=True, slots=True)
class Config:
    data_dir: Path = field(default_factory=default_data_dir)
    listen: str = DEFAULT_LISTEN
    bootstrap: tuple[str, ...] = ()
    backup_authorize: tuple[str, ...] = ()

    @property
    def identity_path(self) -> Path:
        return self.data_dir / IDENTITY_NAME

    @classmethod
    def load(cls, path: Path | None = None, *, data_dir: Path | None = None) -> Config:
        """The config at ``path`` (default location if None; a missing file is all defaults).

        ``data_dir``, when given, overrides the file's.
        """
        path = path or default_config_path()
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raw = {}
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"config {path} is not valid TOML: {exc}") from None
        unknown = sorted(set(raw) - {"data_dir", "listen", "bootstrap", "backup_authorize"})
        if unknown:
            raise InvalidInput(f"config {path}: unknown key {unknown[0]!r}")
        config = cls()
        if "data_dir" in raw:
            config = replace(config, data_dir=Path(_typed(raw, "data_dir", str, path)).expanduser())
        if "listen" in raw:
            config = replace(config, listen=_typed(raw, "listen", str, path))
        if "bootstrap" in raw:
            config = replace(config, bootstrap=_strings(raw, "bootstrap", "'host:port'", path))
        if "backup_authorize" in raw:
            keys = _strings(raw, "backup_authorize", "device key hex", path)
            config = replace(config, backup_authorize=keys)
        if data_dir is not None:
            config = replace(config, data_dir=data_dir)
        return config


def _strings(raw: dict[str, object], key: str, what: str, path: Path) -> tuple[str, ...]:
    items = _typed(raw, key, list, path)
    if not all(isinstance(s, str) for s in items):
        raise InvalidInput(f"config {path}: {key} is a list of {what} strings")
    return tuple(items)


def _typed(raw: dict[str, object], key: str, kind: type[T], path: Path) -> T:
    value = raw[key]
    if not isinstance(value, kind):
        raise InvalidInput(f"config {path}: {key} must be a {kind.__name__}")
    return value


__all__ = ["CONFIG_NAME", "DEFAULT_LISTEN", "Config", "default_config_path", "default_data_dir"]
