# opsplane: the two commands for a fresh machine are `make demo` and `make test`.
#
# Each target installs only what it uses, into a project-local .venv, and each install is a real file target
# (a second run finds it up to date with its requirements and does nothing):
# - the local AWS world (moto's server): requirements-world.txt, for the demo, the tests and the benchmarks;
# - the deploy template's checks (cfn-lint, the SAM translator): requirements-checks.txt, and checkov in a
#   virtualenv of its own (.venv/checkov), whose pins clash with moto's: for the tests and template-check;
# - the Lambda build tool (cargo-lambda with zig): requirements-lambda.txt, for build-lambdas.

PYTHON ?= python3
VENV   := .venv
CARGO  ?= cargo

WORLD   := $(VENV)/.world-done
CHECKS  := $(VENV)/.checks-done
LAMBDA  := $(VENV)/.lambda-done
CHECKOV_REQ := bootstrap/checkov/requirements.txt

.PHONY: setup world checks lambda-tools demo demo-build test unit conformance template-check bench lint build-lambdas clean-venv

setup: world checks lambda-tools
world: $(WORLD)
checks: $(CHECKS)
lambda-tools: $(LAMBDA)

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "python3 is required for the local AWS world (moto)"; exit 1; }
	$(PYTHON) -m venv $(VENV)

$(WORLD): requirements-world.txt | $(VENV)/bin/python
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-world.txt
	@touch $@

# After the world's install, never beside it: two pips must not write one environment at once.
$(CHECKS): requirements-checks.txt $(CHECKOV_REQ) | $(WORLD)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-checks.txt
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install --quiet --disable-pip-version-check -r $(CHECKOV_REQ)
	@touch $@

$(LAMBDA): requirements-lambda.txt | $(WORLD)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-lambda.txt
	@touch $@

## The main job on the local default: moto, bootstrap, the workflows on the local engine. moto installs while
## the CLI builds (only the CLI and what it links), not before it.
demo:
	@$(MAKE) --no-print-directory -j2 world demo-build
	RUST_LOG=$${RUST_LOG:-warn} $(CARGO) run --quiet -p opsplane-cli -- demo

demo-build:
	$(CARGO) build --quiet -p opsplane-cli

## Every test: the deploy template's checks, unit and end-to-end (against moto), then the conformance floors
## of the local engine.
test: world checks
	bash scripts/test.sh

unit:
	$(CARGO) test --workspace --lib --bins --tests

conformance:
	bash scripts/conformance.sh

## cfn-lint and checkov on bootstrap/template.yaml; a finding fails unless skipped in the template with a reason.
template-check: checks
	bash scripts/template-check.sh

## Benchmarks (not tests): figures go to docs/BENCHMARKS.md.
bench: world
	bash scripts/bench.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

## Deployable Lambdas for Graviton: every crate under functions/ in one cargo build (its dependencies built
## once, not per function), cargo-lambda and zig from .venv. Each lands in dist/lambda/<function>/bootstrap,
## the CodeUri the deploy template names, so `sam deploy` packages them as built (no `sam build`).
FUNCTION_PACKAGES = $(foreach m,$(wildcard functions/*/Cargo.toml),-p $(shell sed -n 's/^name = "\(.*\)"$$/\1/p' $(m) | head -n 1))

build-lambdas: lambda-tools
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --arm64 $(FUNCTION_PACKAGES)
	rm -rf dist/lambda && mkdir -p dist
	cp -R $${CARGO_TARGET_DIR:-target}/lambda dist/lambda
	@ls -l dist/lambda/*/bootstrap

clean-venv:
	rm -rf $(VENV)
