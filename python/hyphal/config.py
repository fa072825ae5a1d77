"""The node's one typed configuration (:class:`NodeConfig`): a TOML file, defaults and keywords.

Every key is optional; a missing file means all defaults. A section is a
table that maps onto a frozen dataclass by its typed fields, so the file and
the code name options the same way. Unknown keys, values of the wrong type
and values a section refuses are errors (:class:`~hyphal.errors.InvalidInput`)
that name the key with its section (``dht.alpha must be an integer``), so a
typo never silently falls back to a default.

```toml
data_dir = "/var/lib/hyphal"          # default: the user's data directory
listen = "0.0.0.0:7300"               # TCP for connections, UDP for the DHT
listen_ws = "127.0.0.1:7301"          # also accept connections over WebSocket (default: off)
bootstrap = ["seed.example:7300"]     # DHT seeds
advertise = ["203.0.113.7:7300"]      # where peers reach this node (default: the listen address)
name = "laptop"                       # this device's name in its groups (default: the host name)
backup_authorize = ["<device key hex>"]  # `hyphal serve --backup` backs up groups for these

[dht]          # hyphal.dht.config.DhtConfig: k, alpha, disjoint_paths, record_ttl, intervals, ...
k = 20
disjoint_paths = 3

[connection]   # hyphal.net.config.ConnectionConfig: timeouts, windows, buffers
idle_timeout = 45.0
keepalive_interval = false            # an optional value: `false` turns it off

[replication]  # hyphal.replication.state.ReplicatorConfig: request sizes and windows

[blobs]        # BlobsConfig
gc_interval = 3600.0                  # seconds between garbage collections; false: only on demand

[secrets]      # hyphal.secrets.config.SecretsConfig: replicas, interval, skew, timeouts
replicas = 5

[http]         # hyphal.http.config.HttpConfig: listen (default 127.0.0.1:0), cors_origins
               # (`http = false` instead turns the HTTP API off)

[mainline]     # hyphal.mainline.config.MainlineConfig: the BitTorrent DHT bridge (off by default)
enabled = true
bootstrap = ["router.bittorrent.com:6881"]
```

Values: integers for ``int`` fields (``true`` is not one), numbers for
``float`` fields, ``true``/``false`` for ``bool``, strings for ``str`` and
paths (``~`` expands), lists of strings for lists; no number is negative.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
import types
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

import platformdirs

from hyphal.dht.config import DhtConfig
from hyphal.errors import InvalidInput
from hyphal.http.config import HttpConfig
from hyphal.mainline.config import MainlineConfig
from hyphal.net.config import ConnectionConfig
from hyphal.replication.state import ReplicatorConfig
from hyphal.secrets.config import SecretsConfig

CONFIG_NAME = "config.toml"
IDENTITY_NAME = "identity"
DEFAULT_LISTEN = "0.0.0.0:7300"
D = TypeVar("D")


def default_data_dir() -> Path:
    """Where a node keeps its data unless told otherwise (``~/.local/share/hyphal`` on Linux)."""
    return Path(platformdirs.user_data_dir("hyphal", appauthor=False))


def default_config_path() -> Path:
    return Path(platformdirs.user_config_dir("hyphal", appauthor=False)) / CONFIG_NAME


@dataclass(frozen=True, slots=True)
class BlobsConfig:
    """The node's blob store."""

    gc_interval: float | None = 3600.0
    """Seconds between garbage collections of blobs nothing references; ``None``: only on demand."""

    def __post_init__(self) -> None:
        if self.gc_interval is not None and self.gc_interval <= 0:
            raise InvalidInput("gc_interval must be positive (or false: only on demand)")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Every option of a node; each section is the config its service takes."""

    data_dir: Path = field(default_factory=default_data_dir)
    listen: str = DEFAULT_LISTEN
    listen_ws: str | None = None
    """Also accept connections over WebSocket on this ``host:port`` (:mod:`hyphal.net.websocket`)."""
    bootstrap: tuple[str, ...] = ()
    advertise: tuple[str, ...] = ()
    name: str | None = None
    backup_authorize: tuple[str, ...] = ()
    dht: DhtConfig = field(default_factory=DhtConfig)
    connection: ConnectionConfig = field(default_factory=ConnectionConfig)
    replication: ReplicatorConfig = field(default_factory=ReplicatorConfig)
    blobs: BlobsConfig = field(default_factory=BlobsConfig)
    secrets: SecretsConfig = field(default_factory=SecretsConfig)
    http: HttpConfig | None = field(default_factory=HttpConfig)  # the HTTP API; `http = false`: off
    mainline: MainlineConfig = field(default_factory=MainlineConfig)

    def __post_init__(self) -> None:
        # DhtConfig is the DHT's own (mutable, unchecked) record: the node checks what would
        # make its lookups meaningless.
        for key in ("k", "alpha", "disjoint_paths"):
            if getattr(self.dht, key) < 1:
                raise InvalidInput(f"dht.{key} must be at least 1")

    @property
    def identity_path(self) -> Path:
        return self.data_dir / IDENTITY_NAME

    def overridden(self, **options: Any) -> NodeConfig:
        """This config with every option given that is not ``None`` replaced (sequences as tuples)."""
        known = {f.name for f in fields(self)}
        for key in options:
            if key not in known:
                raise InvalidInput(f"unknown node option {key!r}")
        changes: dict[str, Any] = {
            key: tuple(value) if isinstance(value, list | tuple) else value
            for key, value in options.items()
            if value is not None
        }
        return replace(self, **changes)

    @classmethod
    def load(cls, path: Path | None = None, *, data_dir: Path | None = None) -> NodeConfig:
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
        except RecursionError:  # tomllib recurses once per level of nested arrays and tables
            raise InvalidInput(f"config {path} nests arrays or tables too deeply") from None
        try:
            config = load_section(cls, raw)
        except InvalidInput as exc:
            raise InvalidInput(f"config {path}: {exc}") from None
        return config if data_dir is None else replace(config, data_dir=data_dir)


def load_section(kind: type[D], table: dict[str, Any], section: str = "") -> D:
    """The dataclass ``kind`` from a TOML ``table``: each key a field, converted by its type.

    ``section`` prefixes the names in errors (``"dht"`` gives ``dht.alpha``).
    """
    prefix = f"{section}." if section else ""
    hints = get_type_hints(kind)
    settable = {f.name for f in fields(kind) if f.init}  # type: ignore[arg-type]
    unknown = sorted(set(table) - settable)
    if unknown:
        raise InvalidInput(f"unknown key {prefix + unknown[0]!r}")
    values = {key: _convert(hints[key], value, prefix + key) for key, value in table.items()}
    try:
        return kind(**values)
    except InvalidInput as exc:
        # The section's own check refused it: name the key that it refuses on its own.
        for key, value in values.items():
            try:
                kind(**{key: value})
            except InvalidInput as alone:
                text = str(alone)
                raise InvalidInput(
                    f"{prefix}{text}" if text.startswith(key) else f"{prefix}{key}: {text}"
                ) from None
        raise InvalidInput(f"[{section}]: {exc}" if section else str(exc)) from None


def _convert(kind: Any, value: object, name: str) -> object:
    """``value`` from TOML as the field type ``kind``; an error naming ``name`` if it is not one."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind):
        if not isinstance(value, dict):
            raise InvalidInput(f"{name} must be a table ([{name}])")
        return load_section(kind, value, name)
    origin, args = get_origin(kind), get_args(kind)
    if origin in (Union, types.UnionType):
        inner = [a for a in args if a is not type(None)]
        if len(inner) != 1 or len(args) != 2:
            raise InvalidInput(f"{name} cannot be set in a config file")
        if value is False and inner[0] is not bool:
            return None  # TOML has no null: `false` turns an optional value off
        return _convert(inner[0], value, name)
    if kind is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{name} must be true or false")
        return value
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise InvalidInput(f"{name} must be an integer")
        return _not_negative(value, name)
    if kind is float:
        try:  # an integer too large for a float overflows
            number = float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
        except OverflowError:
            number = None
        if number is None or not math.isfinite(number):
            raise InvalidInput(f"{name} must be a number")
        return _not_negative(number, name)
    if kind is str:
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string")
        return value
    if kind is Path:
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a path (a string)")
        try:
            return Path(value).expanduser()
        except RuntimeError:  # "~user/..." for a user with no home directory here
            raise InvalidInput(
                f"{name}: {value[:64]!r} names the home of a user this system does not know"
            ) from None
    if origin is tuple and args == (str, Ellipsis):
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise InvalidInput(f"{name} must be a list of strings")
        return tuple(value)
    # A hook (a callable), bytes and the like are for code, not for a file.
    raise InvalidInput(f"{name} cannot be set in a config file")


def _not_negative(value: float, name: str) -> float:
    if value < 0:
        raise InvalidInput(f"{name} must not be negative")
    return value


__all__ = [
    "CONFIG_NAME",
    "DEFAULT_LISTEN",
    "IDENTITY_NAME",
    "BlobsConfig",
    "NodeConfig",
    "default_config_path",
    "default_data_dir",
    "load_section",
]
