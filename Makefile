# opsplane: the two commands for a fresh machine are `make demo` and `make test`.
#
# `make setup` builds .venv (moto's server for the local AWS world, cargo-lambda for deployable builds, cfn-lint
# and the SAM translator for the deploy template) and .venv/checkov (checkov, whose pins clash with moto's). It
# is a real file target: a second run finds both up to date with their requirements and does nothing.

PYTHON ?= python3
VENV   := .venv
STAMP  := $(VENV)/.setup-done
CARGO  ?= cargo

CHECKOV_REQ := bootstrap/checkov/requirements.txt

.PHONY: setup demo test unit conformance template-check bench lint build-lambdas clean-venv

setup: $(STAMP)

$(STAMP): requirements-dev.txt $(CHECKOV_REQ)
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required for the local AWS world (moto)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check -r $(CHECKOV_REQ)
	@touch $@

## The main job on the local default: moto, bootstrap, the workflows on the local engine.
demo: setup
	RUST_LOG=$${RUST_LOG:-warn} $(CARGO) run --quiet -p opsplane-cli -- demo

## Every test: the deploy template's checks, unit and end-to-end (against moto), then the conformance floors
## of the local engine.
test: setup
	bash scripts/test.sh

unit:
	$(CARGO) test --workspace --lib --bins --tests

conformance:
	bash scripts/conformance.sh

## cfn-lint and checkov on bootstrap/template.yaml; a finding fails unless skipped in the template with a reason.
template-check: setup
	bash scripts/template-check.sh

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
