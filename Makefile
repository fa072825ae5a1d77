# Every target works from a fresh clone: it makes its own venv and installs what it needs.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c

VENV ?= .venv
PY := $(VENV)/bin/python
DEPS := $(VENV)/.deps-installed
BUILT := $(VENV)/.core-built
CORE_SOURCES := $(shell find rust -name '*.rs') Cargo.toml pyproject.toml

.PHONY: all build test test-rust test-python check-wheel lint demo bench clean

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

# What users do: `pip wheel .` then `pip install` into a fresh venv, used from outside the source tree.
check-wheel: $(DEPS)
	rm -rf $(VENV)/wheel-check && python3 -m venv $(VENV)/wheel-check
	$(VENV)/wheel-check/bin/pip wheel . --no-deps -q -w $(VENV)/wheel-check/dist
	$(VENV)/wheel-check/bin/pip install -q $(VENV)/wheel-check/dist/hyphal-*.whl
	cd $(VENV)/wheel-check && bin/python -m hyphal.demo > demo.log && tail -n 1 demo.log

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
	rm -rf $(VENV) target python/hyphal/_core*.so

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
