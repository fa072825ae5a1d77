"""Config: defaults, the TOML keys, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from hyphal.config import DEFAULT_LISTEN, Config
from hyphal.errors import InvalidInput


def test_a_missing_file_is_all_defaults(tmp_path: Path) -> None:
    config = Config.load(tmp_path / "none.toml")
    assert config.listen == DEFAULT_LISTEN
    assert config.bootstrap == ()
    assert config.identity_path == config.data_dir / "identity"


def test_keys_are_read_and_data_dir_can_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('data_dir = "~/x"\nlisten = "127.0.0.1:9"\nbootstrap = ["a:1", "b:2"]\n')
    config = Config.load(path)
    assert config.data_dir == Path("~/x").expanduser()
    assert (config.listen, config.bootstrap) == ("127.0.0.1:9", ("a:1", "b:2"))
    assert Config.load(path, data_dir=tmp_path).data_dir == tmp_path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("listen = 7300", "listen must be a str"),
        ("bootstrap = [1]", "bootstrap is a list"),
        ("bootstrap = 'a:1'", "bootstrap must be a list"),
        ("colour = 'red'", "unknown key 'colour'"),
        ("listen = ", "not valid TOML"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InvalidInput, match=message):
        Config.load(path)
