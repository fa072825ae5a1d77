"""The one path for optional dependencies: a missing extra names what to install."""

from __future__ import annotations

import sys

import pytest

from hyphal.errors import HyphalError, MissingExtra
from hyphal.extras import EXTRAS, available, require


def test_a_missing_module_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes the import fail as if the package were absent.
    monkeypatch.setitem(sys.modules, "fastapi", None)
    with pytest.raises(MissingExtra) as caught:
        require("http", "fastapi", "the HTTP API")
    assert isinstance(caught.value, HyphalError)
    assert "pip install 'hyphal[http]'" in str(caught.value)
    assert "the HTTP API" in str(caught.value)
    assert caught.value.extra == "http"


def test_a_present_module_is_returned() -> None:
    # fastbencode is in the dev group, so a checkout's venv always has it.
    module = require("mainline", "fastbencode", "the mainline DHT")
    assert module.__name__ == "fastbencode"


def test_an_unknown_extra_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown extra"):
        require("nope", "json", "nothing")


def test_available_reports_each_extra() -> None:
    assert set(EXTRAS) == {"http", "lan", "mainline"}
    assert available("mainline") is True
