"""The release's facts agree: one version, the licence, the classifiers, the extras, the changelog.

The built artefacts themselves are checked by ``make check-wheel`` (``tests/wheel_check.py``
run in fresh venvs holding ``make dist``'s wheel and one built from the sdist alone).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

import hyphal
from hyphal import _core
from hyphal.cli import cli
from hyphal.extras import EXTRAS, available

ROOT = Path(__file__).resolve().parent.parent
# The newest CPython the classifiers claim. CI has one interpreter, so a newer one is claimed only
# after `make check-wheel CHECK_PYTHON=python3.x` has passed with it.
NEWEST_MINOR = 13


def toml(name: str) -> dict[str, Any]:
    return tomllib.loads((ROOT / name).read_text())


@pytest.fixture(scope="module")
def project() -> dict[str, Any]:
    table: dict[str, Any] = toml("pyproject.toml")["project"]
    return table


def test_the_version_is_cargo_tomls_everywhere(project: dict[str, Any]) -> None:
    cargo_version = toml("Cargo.toml")["package"]["version"]
    assert "version" not in project, "the version lives in Cargo.toml only"
    assert "version" in project["dynamic"]
    assert hyphal.__version__ == _core.__version__ == cargo_version
    # maturin writes the PEP 440 spelling into the metadata ("0.2.0-alpha.1" becomes "0.2.0a1"); only a
    # plain X.Y.Z is spelled the same both ways, so __version__ and `pip show` agree.
    assert str(Version(cargo_version)) == cargo_version


def test_hyphal_version_prints_it_without_a_node_or_config(tmp_path: Path) -> None:
    # --version is eager: it answers before the group loads a config, so a broken one cannot stop it.
    broken = tmp_path / "broken.toml"
    broken.write_text("this is not toml [")
    result = CliRunner().invoke(cli, ["--config", str(broken), "--version"], prog_name="hyphal")
    assert result.exit_code == 0, result.output
    assert result.output == f"hyphal {hyphal.__version__}\n"


def test_the_changelog_has_this_version_under_unreleased() -> None:
    headings = re.findall(r"^## (\S+)", (ROOT / "CHANGELOG.md").read_text(), flags=re.M)
    assert headings[0] == "Unreleased"
    assert hyphal.__version__ in headings[1:]


def test_the_licence_is_declared_once_and_its_texts_are_there(project: dict[str, Any]) -> None:
    assert project["license"] == toml("Cargo.toml")["package"]["license"] == "MIT OR Apache-2.0"
    texts = {name: (ROOT / name).read_text() for name in project["license-files"]}
    assert set(texts) == {"LICENSE-MIT", "LICENSE-APACHE"}
    assert "Permission is hereby granted, free of charge" in texts["LICENSE-MIT"]
    assert "Version 2.0, January 2004" in texts["LICENSE-APACHE"]
    # PEP 639: with a licence expression, licence classifiers are an error for indexes.
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_the_classifiers_name_every_supported_python(project: dict[str, Any]) -> None:
    supported = SpecifierSet(project["requires-python"])
    oldest = min(minor for minor in range(30) if f"3.{minor}" in supported)
    claimed = {
        int(match[1])
        for c in project["classifiers"]
        if (match := re.fullmatch(r"Programming Language :: Python :: 3\.(\d+)", c))
    }
    assert claimed == set(range(oldest, NEWEST_MINOR + 1))
    assert "Typing :: Typed" in project["classifiers"]
    assert (ROOT / "python" / "hyphal" / "py.typed").exists()


def test_metadata_claims_no_address_that_does_not_exist(project: dict[str, Any]) -> None:
    # No public repository or site exists yet; an invented URL would be worse than none.
    for url in project.get("urls", {}).values():
        assert not re.search(r"example|TODO|placeholder|localhost", url), url
    for author in project["authors"]:
        assert "example" not in author.get("email", ""), author


def test_the_extras_are_the_groups_hyphal_extras_knows(project: dict[str, Any]) -> None:
    groups = project["optional-dependencies"]
    assert set(groups) == set(EXTRAS)
    # The dev group holds every extra's packages, so a checkout's suite runs every feature.
    dev = {Requirement(r).name.lower() for r in toml("pyproject.toml")["dependency-groups"]["dev"]}
    for extra, requirements in groups.items():
        assert {Requirement(r).name.lower() for r in requirements} <= dev, extra
        assert available(extra), f"the packages of [{extra}] do not provide {EXTRAS[extra]}"
