#!/usr/bin/env bash
# `make test`: the deploy template's static checks, every test suite, then the local engine's conformance
# floors, then one closing line with the test totals. The conformance run prints its own "N passed, M failed"
# of scored corpus cases (some are expected to fail, see docs/CONFORMANCE.md); the closing line here counts
# tests, which must all pass.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

log=$(mktemp)
trap 'rm -f "$log"' EXIT

bash scripts/template-check.sh
cargo test --workspace --lib --bins --tests 2>&1 | tee "$log"
bash scripts/conformance.sh

passed=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$log" | awk '{ total += $4 } END { print total + 0 }')
if [ "$passed" -eq 0 ]; then
  echo "no test ran" >&2
  exit 1
fi
echo "tests: ${passed} passed, 0 failed"
