"""What every command shares: one-line errors, ``--json``, the config, the daemon call."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import click

from hyphal.config import NodeConfig
from hyphal.control.client import ControlClient, Listener
from hyphal.errors import HyphalError, InvalidInput

PASSPHRASE_ENV = "HYPHAL_PASSPHRASE"
P = ParamSpec("P")
R = TypeVar("R")
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Our typed errors and OS errors become one line on stderr and exit status 1."""

    @wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except (HyphalError, OSError) as exc:
            message = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            if isinstance(exc, TimeoutError) and not message:
                message = "timed out"
            where = f" ({exc.filename})" if isinstance(exc, OSError) and exc.filename else ""
            raise click.ClickException(f"{message}{where}") from None

    return run


def _set_json(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(dict)["json"] = True


def json_option(command: F) -> F:
    """``--json`` after the command too (``hyphal ls --json``), as well as before it."""
    option = click.option(
        "--json",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        help="Machine-readable output.",
    )
    return option(command)


def wants_json(ctx: click.Context) -> bool:
    return bool(ctx.obj["json"])


def emit(ctx: click.Context, data: Any, text: str) -> None:
    click.echo(json.dumps(data, sort_keys=True) if wants_json(ctx) else text)


def config(ctx: click.Context) -> NodeConfig:
    found: NodeConfig = ctx.obj["config"]
    return found


def data_dir(ctx: click.Context) -> Path:
    return config(ctx).data_dir.absolute()


def call(
    ctx: click.Context,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    on_progress: Listener | None = None,
    on_event: Listener | None = None,
) -> Any:
    """One request to the daemon running in the data dir (:class:`NoDaemon` if none is)."""
    with ControlClient(data_dir(ctx)) as client:
        return client.call(method, params, on_progress=on_progress, on_event=on_event)


def passphrase_from_env(wanted: bool) -> str | None:
    """The passphrase in ``$HYPHAL_PASSPHRASE`` when ``--passphrase-env`` asks for it."""
    if not wanted:
        return None
    passphrase = os.environ.get(PASSPHRASE_ENV)
    if not passphrase:
        raise InvalidInput(f"--passphrase-env needs ${PASSPHRASE_ENV} set")
    return passphrase


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def command_options(command: Callable[..., R]) -> Callable[..., R]:
    """Every daemon command: one-line errors and ``--json``."""
    return json_option(click.pass_context(user_errors(command)))


__all__ = [
    "PASSPHRASE_ENV",
    "call",
    "command_options",
    "config",
    "data_dir",
    "emit",
    "human_size",
    "json_option",
    "passphrase_from_env",
    "user_errors",
    "wants_json",
]
