# opsplane: the two commands for a fresh machine are `make demo` and `make test`.
#
# `make setup` builds .venv (moto's server for the local AWS world, cargo-lambda for deployable builds). It is
# a real file target: a second run finds .venv up to date with requirements-dev.txt and does nothing.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.setup-done
CARGO  ?= cargo

.PHONY: setup demo test unit conformance bench lint build-lambdas clean-venv

setup: $(STAMP)

$(STAMP): requirements-dev.txt
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required for the local AWS world (moto)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@touch $@

## The main job on the local default: moto, bootstrap, the workflows on the local engine.
demo: setup
	$(CARGO) run --quiet -p opsplane-cli -- demo

## Every test: unit and end-to-end (against moto), then the conformance floors of the local engine.
test: setup
	bash scripts/test.sh

unit:
	$(CARGO) test --workspace --lib --bins --tests

conformance:
	bash scripts/conformance.sh

## Benchmarks (not tests): figures go to docs/BENCHMARKS.md.
bench: setup
	bash scripts/bench.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Deployable Lambdas for Graviton, every crate under functions/ (cargo-lambda and zig come from .venv).
## Each lands in target/lambda/<function>/bootstrap; the sizes are printed.
FUNCTION_PACKAGES = $(foreach m,$(wildcard functions/*/Cargo.toml),-p $(shell sed -n 's/^name = "\(.*\)"$$/\1/p' $(m) | head -n 1))

build-lambdas: setup
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 $(FUNCTION_PACKAGES)
	@ls -l $${CARGO_TARGET_DIR:-target}/lambda/*/bootstrap

clean-venv:
	rm -rf $(VENV)
