"""The ``[http]`` config section and the token file, without a daemon."""

from __future__ import annotations

import stat
import threading
from pathlib import Path

import pytest

from hyphal.config import NodeConfig
from hyphal.errors import InvalidInput
from hyphal.http.access import load_or_create_token, token_path
from hyphal.http.config import DEFAULT_HTTP_LISTEN, HttpConfig


def load(tmp_path: Path, text: str) -> NodeConfig:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return NodeConfig.load(path)


def test_on_by_default_on_loopback(tmp_path: Path) -> None:
    assert load(tmp_path, "").http == HttpConfig()
    assert HttpConfig().listen == DEFAULT_HTTP_LISTEN == "127.0.0.1:0"


def test_the_section_and_false(tmp_path: Path) -> None:
    found = load(tmp_path, '[http]\nlisten = "127.0.0.1:7380"\ncors_origins = ["https://app.example"]\n')
    assert found.http == HttpConfig("127.0.0.1:7380", ("https://app.example",))
    assert load(tmp_path, "http = false\n").http is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[http]\nlisten = 7380\n", "http.listen must be a string"),
        ("[http]\nport = 1\n", "unknown key 'http.port'"),
        ('[http]\ncors_origins = ["app.example"]\n', "cors_origins"),
        ('[http]\ncors_origins = ["https://app.example/path"]\n', "cors_origins"),
        ("http = true\n", "http must be a table"),
    ],
)
def test_mistakes_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        load(tmp_path, text)


def test_the_token_is_made_once_private_and_shared_by_racing_starts(tmp_path: Path) -> None:
    found: list[str] = []
    threads = [
        threading.Thread(target=lambda: found.append(load_or_create_token(tmp_path / "d"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(found)) == 1
    assert len(found[0]) >= 40
    assert stat.S_IMODE(token_path(tmp_path / "d").stat().st_mode) == 0o600
    assert load_or_create_token(tmp_path / "d") == found[0]
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["http-token"]
