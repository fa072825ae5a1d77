# Every target works from a fresh clone: it makes its own venv and installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV ?= .venv
PY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed
BUILT := $(VENV)/.core-built
CORE_SOURCES := $(shell find rust -name '*.rs') Cargo.toml pyproject.toml

.PHONY: all build test test-rust test-python dist check-wheel lint demo bench clean

all: test

# Quiet unless something fails: a step's output is kept in a log and shown only then.
QUIETLY = log=$$(mktemp) && trap 'rm -f "$$log"' EXIT && run() { "$$@" >"$$log" 2>&1 || { cat "$$log" >&2; exit 1; }; } && run

$(DEPS): pyproject.toml
	@echo "setting up $(VENV) (once)"
	@$(QUIETLY) python3 -m venv $(VENV)
	@$(QUIETLY) $(PY) -m pip install -q --disable-pip-version-check --upgrade pip
	@$(QUIETLY) $(PY) -m pip install -q --disable-pip-version-check --group dev
	@touch $@

# Build the extension in release mode and install the package (editable) into the venv.
$(BUILT): $(DEPS) $(CORE_SOURCES)
	@echo "building the Rust core (release)"
	@$(QUIETLY) env VIRTUAL_ENV=$(abspath $(VENV)) PATH=$(abspath $(VENV))/bin:$$PATH \
		$(VENV)/bin/maturin develop --release -q
	@touch $@

build: $(BUILT)

test-rust:
	cargo test --quiet

test-python: $(BUILT)
	$(PY) -m pytest -q

test: build test-rust test-python check-wheel lint

# What a release uploads, and the checks that users can install it. `make dist` builds the sdist, then the
# wheel from the sdist alone: only the .tar.gz is copied to an empty directory, and pip builds it from a fresh
# venv with build isolation (maturin from PyPI, as for a user), so what the sdist lacks fails here. zig links
# the wheel against glibc 2.17: manylinux2014 (= manylinux_2_17, the oldest glibc Rust still targets),
# abi3 for CPython 3.11 and later, whatever glibc builds it. CHECK_PYTHON=python3.13 uses another CPython.
DIST := dist
WHEEL_POLICY := manylinux_2_17_x86_64
CHECK_PYTHON ?= python3
# The sdist holds every tracked file, so any of them changing rebuilds dist/.
DIST_INPUTS := $(wildcard $(shell git ls-files 2>/dev/null))
CHECK_DIR := $(or $(TMPDIR),/tmp)/hyphal-check-wheel-$(shell id -u)-$(notdir $(abspath .))
# $(IN) DIR CMD...: run CMD in DIR with nothing of the checkout's environment that could leak the tree in.
IN = env -u PYTHONPATH -u VIRTUAL_ENV -u CARGO_TARGET_DIR -C

dist: $(DIST)/.built

$(DIST)/.built: $(DEPS) $(DIST_INPUTS)
	@echo "building the sdist, then from it alone the $(WHEEL_POLICY) wheel, into $(DIST)/"
	@rm -rf $(DIST) $(CHECK_DIR) && mkdir -p $(CHECK_DIR)/sdist
	@$(QUIETLY) $(VENV)/bin/maturin sdist --out $(DIST)
	@! tar -tzf $(DIST)/hyphal-*.tar.gz | grep -E '\.(so|pyd|dylib)$$' \
		|| { echo "the sdist holds a built library from the checkout" >&2; exit 1; }
	@cp $(DIST)/hyphal-*.tar.gz $(CHECK_DIR)/sdist/
	@$(QUIETLY) $(CHECK_PYTHON) -m venv $(CHECK_DIR)/build-venv
	@$(QUIETLY) $(IN) $(CHECK_DIR)/sdist MATURIN_PEP517_ARGS="--zig --compatibility manylinux2014" \
		CARGO_ZIGBUILD_ZIG_PATH=$$($(PY) -c 'import ziglang, pathlib; print(pathlib.Path(ziglang.__file__).with_name("zig"))') \
		../build-venv/bin/pip wheel -q --disable-pip-version-check --no-deps -w $(abspath $(DIST)) \
		$(CHECK_DIR)/sdist/hyphal-*.tar.gz
	@$(QUIETLY) $(VENV)/bin/auditwheel show $(DIST)/hyphal-*.whl && tr -s ' \n' ' ' <"$$log" \
		| grep -q 'consistent with the following platform tag: "$(WHEEL_POLICY)"' \
		|| { cat "$$log" >&2; echo "auditwheel does not find the wheel $(WHEEL_POLICY)" >&2; exit 1; }
	@rm -rf $(CHECK_DIR)
	@cd $(DIST) && ls hyphal-* && touch .built

# What users do, outside the source tree with nothing of it on the path: install the wheel `make dist` built
# from the sdist, with no extras, into a fresh venv, check it (tests/wheel_check.py) and run the demo.
check-wheel: dist
	@echo "checking the wheel: a core install (no extras) in a fresh venv runs the demo"
	@rm -rf $(CHECK_DIR) && mkdir -p $(CHECK_DIR) && cp tests/wheel_check.py $(CHECK_DIR)/
	@$(QUIETLY) $(CHECK_PYTHON) -m venv $(CHECK_DIR)/venv
	@$(QUIETLY) $(CHECK_DIR)/venv/bin/pip install -q --disable-pip-version-check $(DIST)/hyphal-*.whl
	@$(QUIETLY) $(IN) $(CHECK_DIR) venv/bin/python wheel_check.py && tail -n 1 "$$log"
	@$(QUIETLY) $(IN) $(CHECK_DIR) venv/bin/python -m hyphal.demo && tail -n 1 "$$log"
	@rm -rf $(CHECK_DIR)

lint: $(BUILT)
	$(VENV)/bin/ruff check python tests benches fuzz
	$(VENV)/bin/ruff format --check python tests benches fuzz
	$(VENV)/bin/mypy --strict python/hyphal
	cargo fmt --check
	cargo clippy --quiet --all-targets -- -D warnings
	cargo clippy --quiet --all-targets --features python -- -D warnings

# Real node processes share files in a group, with a backup server (`python -m hyphal.demo` is the core's).
demo: $(BUILT)
	$(PY) -m hyphal.demo_group

bench: $(BUILT)
	$(PY) -m benches core
	$(PY) -m benches replicate
	$(PY) -m benches blobs
	$(PY) -m benches dht
	$(PY) -m benches group

clean:
	rm -rf $(VENV) target $(DIST) python/hyphal/_core*.so

# -- fuzzing (issue 21 §1): every decoder under atheris, see fuzz/__init__.py ----------------------
# `make fuzz` runs each target FUZZ_SECONDS (`make fuzz FUZZ_SECONDS=600` for a long run);
# `make test` runs each for the short budget FUZZ_CI_SECONDS, in turn.
FUZZ_SECONDS ?= 60
FUZZ_CI_SECONDS ?= 8

.PHONY: fuzz fuzz-short

fuzz: $(BUILT)
	$(PY) -m fuzz --seconds $(FUZZ_SECONDS)

fuzz-short: $(BUILT)
	$(PY) -m fuzz --seconds $(FUZZ_CI_SECONDS)

test: fuzz-short
