"""``hyphal http token`` and ``hyphal open``: the node's HTTP API from the command line.

Both read the data dir (the token file, and the URL the running daemon
serves at); neither needs the control socket.
"""

from __future__ import annotations

import webbrowser

import click

from hyphal.cli.common import data_dir, emit, json_option, user_errors
from hyphal.errors import NotAvailable
from hyphal.http.access import load_or_create_token, read_url, token_path


@click.group("http")
def http_group() -> None:
    """The node's local HTTP API (see README: the HTTP API)."""


@http_group.command("token")
@json_option
@click.pass_context
@user_errors
def token(ctx: click.Context) -> None:
    """Print the API's bearer token (made now if the node never started): `Authorization: Bearer TOKEN`."""
    where = data_dir(ctx)
    value = load_or_create_token(where)
    emit(ctx, {"token": value, "path": str(token_path(where))}, value)


@click.command("open")
@click.option("--browser", is_flag=True, help="Open it in the default web browser instead of printing it.")
@json_option
@click.pass_context
@user_errors
def open_command(ctx: click.Context, browser: bool) -> None:
    """Print a URL to the node's web page that signs in with the token (once: the page keeps it)."""
    where = data_dir(ctx)
    url = read_url(where)
    if url is None:
        raise NotAvailable(
            f"no HTTP API is running for {where}: start the node (`hyphal node run`), with the http "
            "extra installed (pip install 'hyphal[http]') and [http] not false in its config"
        )
    # The fragment is never sent to a server nor logged; the page moves it to sessionStorage.
    link = f"{url}/#token={load_or_create_token(where)}"
    if browser and not webbrowser.open(link):
        raise NotAvailable(f"no web browser could be started here; open this URL yourself: {link}")
    emit(ctx, {"url": link, "opened": browser}, "opened the node's page in the browser" if browser else link)


__all__ = ["http_group", "open_command"]
