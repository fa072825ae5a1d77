"""Checks an installed hyphal as a user gets it: `make check-wheel` runs this in a fresh venv.

The venv holds a wheel installed with no extras (``make dist``'s, then one built
from the sdist alone), and this script runs from outside the source tree with
nothing of it on ``sys.path``. It checks that the package is the installed one,
that its one version agrees everywhere, that the metadata ``pip show`` prints is
complete, and that each optional feature, lacking its extra, raises
:class:`~hyphal.errors.MissingExtra` naming it. (The demo, run next by the
Makefile, runs the nodes.) Exits non-zero, saying what is wrong, if anything is.
Not a pytest module: it needs an installed wheel, not a checkout.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import subprocess
import sys
import sysconfig
from pathlib import Path

import hyphal
from hyphal.errors import MissingExtra
from hyphal.extras import EXTRAS, available, require

# What `pip show hyphal` must print a value for, and what the licence must be.
REQUIRED_FIELDS = ("Name", "Version", "Summary", "Author", "License-Expression", "Requires-Python")
LICENCE = "MIT OR Apache-2.0"
LICENCE_FILES = {"LICENSE-MIT", "LICENSE-APACHE"}


def check(condition: bool, what: str) -> None:
    if not condition:
        sys.exit(f"wheel check failed: {what}")
    print(f"ok: {what}")


def check_installed_copy() -> None:
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    where = Path(hyphal.__file__).resolve()
    check(where.is_relative_to(site), f"hyphal is imported from the venv ({where})")


def check_version() -> str:
    version = importlib.metadata.version("hyphal")
    check(hyphal.__version__ == version, f"hyphal.__version__ is the metadata's version ({version})")
    script = Path(sys.executable).parent / "hyphal"
    shown = subprocess.run([script, "--version"], capture_output=True, text=True, timeout=60, check=True)
    check(shown.stdout.strip() == f"hyphal {version}", f"`hyphal --version` says {shown.stdout.strip()!r}")
    return version


def check_metadata() -> None:
    meta = importlib.metadata.metadata("hyphal")
    for field in REQUIRED_FIELDS:
        check(bool(meta.get(field, "").strip()), f"the metadata has {field}: {meta.get(field)!r}")
    check(meta["License-Expression"] == LICENCE, f"the licence is {LICENCE}")
    files = {Path(str(f)).name for f in importlib.metadata.files("hyphal") or () if "licenses" in str(f)}
    check(files >= LICENCE_FILES, f"both licence texts are in the wheel ({sorted(files)})")
    classifiers = meta.get_all("Classifier") or []
    this_python = f"Programming Language :: Python :: {sys.version_info[0]}.{sys.version_info[1]}"
    check(this_python in classifiers, f"the classifiers name this Python ({this_python})")
    check(set(meta.get_all("Provides-Extra") or []) == set(EXTRAS), f"the extras are {sorted(EXTRAS)}")


def check_missing_extras() -> None:
    for extra, modules in EXTRAS.items():
        check(not available(extra), f"a core install lacks the {extra!r} extra")
        try:
            require(extra, modules[0], f"the {extra} feature")
        except MissingExtra as missing:
            check(missing.extra == extra, f"require({extra!r}, ...) raises MissingExtra({missing.extra!r})")
            hint = f"pip install 'hyphal[{extra}]'"
            check(hint in str(missing), f"its message says {hint}")
        else:
            check(False, f"require({extra!r}, {modules[0]!r}, ...) raised nothing")


def check_http_api_names_its_extra() -> None:
    # A real feature, not only the helper: the HTTP API imports FastAPI through require().
    try:
        importlib.import_module("hyphal.http.framework")
    except MissingExtra as missing:
        check(missing.extra == "http", f"the HTTP API without FastAPI raises MissingExtra({missing.extra!r})")
    else:
        check(False, "the HTTP API imported without the http extra")


def main() -> None:
    check_installed_copy()
    version = check_version()
    check_metadata()
    check_missing_extras()
    check_http_api_names_its_extra()
    print(f"hyphal {version}: the installed wheel checks out")


if __name__ == "__main__":
    main()
