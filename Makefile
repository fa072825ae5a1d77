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

# What a release uploads: the sdist, and an abi3 wheel for x86_64 Linux linked by zig against glibc 2.17,
# so it is manylinux2014 (= manylinux_2_17, the oldest glibc Rust still targets) whatever glibc builds it.
DIST := dist
WHEEL_POLICY := manylinux_2_17_x86_64

dist: $(DEPS)
	@echo "building the $(WHEEL_POLICY) wheel and the sdist into $(DIST)/"
	@rm -rf $(DIST)
	@$(QUIETLY) env PATH=$(abspath $(VENV))/bin:$$PATH \
		$(VENV)/bin/maturin build --release --zig --compatibility manylinux2014 --sdist --out $(DIST)
	@$(QUIETLY) $(VENV)/bin/auditwheel show $(DIST)/hyphal-*.whl && tr -s ' \n' ' ' <"$$log" \
		| grep -q 'consistent with the following platform tag: "$(WHEEL_POLICY)"' \
		|| { cat "$$log" >&2; echo "auditwheel does not find the wheel $(WHEEL_POLICY)" >&2; exit 1; }
	@cd $(DIST) && ls hyphal-*

# What users do, outside the source tree and with nothing from it on the path: install `make dist`'s wheel
# with no extras into a fresh venv, check it (tests/wheel_check.py) and run the demo; then copy the sdist
# alone into an empty directory, build a wheel from it in another fresh venv, and check and run that one.
# CHECK_PYTHON=python3.13 checks the same abi3 wheel and sdist on another CPython.
CHECK_PYTHON ?= python3
CHECK_DIR := $(or $(TMPDIR),/tmp)/hyphal-check-wheel-$(shell id -u)-$(notdir $(abspath .))
# in DIR, CMD...: run CMD in DIR with nothing of the checkout's environment that could leak the tree in.
IN = env -u PYTHONPATH -u VIRTUAL_ENV -u CARGO_TARGET_DIR -C

check-wheel: dist
	@rm -rf $(CHECK_DIR) && mkdir -p $(CHECK_DIR)/sdist && cp tests/wheel_check.py $(CHECK_DIR)/
	@echo "checking the wheel: a core install (no extras) in a fresh venv"
	@$(QUIETLY) $(CHECK_PYTHON) -m venv $(CHECK_DIR)/wheel-venv
	@$(QUIETLY) $(CHECK_DIR)/wheel-venv/bin/pip install -q --disable-pip-version-check $(DIST)/hyphal-*.whl
	@$(QUIETLY) $(IN) $(CHECK_DIR) wheel-venv/bin/python wheel_check.py
	@$(QUIETLY) $(IN) $(CHECK_DIR) wheel-venv/bin/python -m hyphal.demo && tail -n 1 "$$log"
	@echo "checking the sdist: a wheel built from it alone, in a fresh venv"
	@cp $(DIST)/hyphal-*.tar.gz $(CHECK_DIR)/sdist/
	@$(QUIETLY) $(CHECK_PYTHON) -m venv $(CHECK_DIR)/sdist-venv
	@$(QUIETLY) $(IN) $(CHECK_DIR)/sdist ../sdist-venv/bin/pip wheel -q --disable-pip-version-check --no-deps \
		-w wheel $(CHECK_DIR)/sdist/hyphal-*.tar.gz
	@$(QUIETLY) $(CHECK_DIR)/sdist-venv/bin/pip install -q --disable-pip-version-check $(CHECK_DIR)/sdist/wheel/hyphal-*.whl
	@$(QUIETLY) $(IN) $(CHECK_DIR) sdist-venv/bin/python wheel_check.py
	@$(QUIETLY) $(IN) $(CHECK_DIR) sdist-venv/bin/python -m hyphal.demo && tail -n 1 "$$log"
	@rm -rf $(CHECK_DIR)

lint: $(BUILT)
	$(VENV)/bin/ruff check python tests benches
	$(VENV)/bin/ruff format --check python tests benches
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
