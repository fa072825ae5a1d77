"""The HTTP API's gate against a real daemon: the token, Host (DNS rebinding), Origin, CORS, and the
``hyphal http token`` / ``hyphal open`` commands."""

from __future__ import annotations

import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from http_daemons import client, start
from hyphal.control.process import DaemonProcess, hyphal_command, run_cli
from hyphal.http.access import load_or_create_token, token_path

APP_ORIGIN = "http://app.example:8080"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    root = tmp_path_factory.mktemp("http-security")
    daemon = start(root, "s", "127.0.0.33", http_toml=f'cors_origins = ["{APP_ORIGIN}"]\n')
    try:
        yield daemon
    finally:
        daemon.stop()


def bare(node: DaemonProcess) -> httpx.Client:
    return httpx.Client(base_url=node.info["http"], timeout=30)


def code(response: httpx.Response) -> str:
    assert response.headers["content-type"].startswith("application/problem+json"), response.text
    found: str = response.json()["code"]
    return found


def test_every_request_needs_the_token(node: DaemonProcess) -> None:
    token = load_or_create_token(node.data_dir)
    with bare(node) as api:
        missing = api.get("/status")
        assert missing.status_code == 401
        assert code(missing) == "token_required"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        wrong = api.get("/status", headers={"Authorization": "Bearer " + "x" * len(token)})
        assert wrong.status_code == 401
        assert api.get("/status", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        # A GET may carry it as access_token (EventSource, links); nothing else may.
        assert api.get("/status", params={"access_token": token}).status_code == 200
        refused = api.post("/groups", params={"access_token": token}, json={"name": "g"})
        assert refused.status_code == 401
        # The public pages: the index and the API's documents.
        index = api.get("/")
        assert index.status_code == 200
        assert "web app" in index.text
        assert "/docs" in index.text
        assert api.get("/openapi.json").json()["openapi"].startswith("3.1")
        assert api.get("/docs").status_code == 200
        assert index.headers["referrer-policy"] == "no-referrer"


def test_the_token_file_is_private_and_the_cli_prints_it(node: DaemonProcess) -> None:
    path = token_path(node.data_dir)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    token = load_or_create_token(node.data_dir)
    printed = subprocess.run(
        [*hyphal_command(), "--data-dir", str(node.data_dir), "http", "token"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert printed.returncode == 0
    assert printed.stdout.strip() == token
    opened = run_cli(node.data_dir, "open")
    url = urlsplit(opened["url"])
    assert f"{url.scheme}://{url.netloc}" == node.info["http"]
    assert url.path == "/"
    assert url.fragment == f"token={token}"


def test_open_without_a_running_api_says_how(tmp_path: Path) -> None:
    done = subprocess.run(
        [*hyphal_command(), "--data-dir", str(tmp_path / "idle"), "open"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "hyphal node run" in done.stderr
    assert "Traceback" not in done.stderr


def test_a_foreign_host_is_refused_even_with_the_token(node: DaemonProcess) -> None:
    port = urlsplit(node.info["http"]).port
    with client(node) as api:
        for host in (f"evil.example:{port}", "127.0.0.33:1", f"127.0.0.1.nip.io:{port}"):
            refused = api.get("/status", headers={"Host": host})
            assert refused.status_code == 403, host
            assert code(refused) == "host_refused", host
        for host in (f"localhost:{port}", f"127.0.0.33:{port}"):
            assert api.get("/status", headers={"Host": host}).status_code == 200
    log = node.log_path.read_text()
    assert "DNS rebinding" in log


def test_cross_site_requests_are_refused_and_cors_is_only_for_configured_origins(node: DaemonProcess) -> None:
    own = node.info["http"]
    with client(node) as api:
        for origin in ("https://evil.example", "null", "http://evil.example:80"):
            refused = api.post("/groups", headers={"Origin": origin}, json={"name": "g"})
            assert refused.status_code == 403, origin
            assert code(refused) == "origin_refused", origin
            assert "access-control-allow-origin" not in refused.headers
        same = api.get("/status", headers={"Origin": own})
        assert same.status_code == 200
        assert "access-control-allow-origin" not in same.headers
        allowed = api.get("/status", headers={"Origin": APP_ORIGIN})
        assert allowed.status_code == 200
        assert allowed.headers["access-control-allow-origin"] == APP_ORIGIN
    with bare(node) as api:
        preflight = api.options(
            "/groups",
            headers={
                "Origin": APP_ORIGIN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == APP_ORIGIN
    with client(node) as api:
        assert api.get("/status").status_code == 200  # still answering


def test_http_false_turns_the_api_off(tmp_path: Path) -> None:
    config = tmp_path / "off.toml"
    config.write_text("http = false\n")
    command = ["--config", str(config), "node", "run", "--listen", "127.0.0.34:0"]
    with DaemonProcess(tmp_path / "off", command) as daemon:
        assert daemon.info["http"] is None
        assert not (daemon.data_dir / "http-url").exists()
