#!/usr/bin/env bash
# `make bench`: every benchmark whose figures are in docs/BENCHMARKS.md, in the order of its sections.
# Every crate under functions/ is built and measured; a new function joins without an edit here.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The function crates, as `-p <package>` arguments: the first `name = "..."` of each manifest is its package.
packages=()
for manifest in functions/*/Cargo.toml; do
  packages+=(-p "$(sed -n 's/^name = "\(.*\)"$/\1/p' "$manifest" | head -n 1)")
done

echo "== Functions: release binaries (native, for timing), then size, cold start, latency, peak RSS"
cargo build --release "${packages[@]}"
cargo bench -p opsplane-e2e --bench functions

echo "== Local engine"
cargo bench -p opsplane-statemachines --bench engine

echo "== Locks"
cargo bench -p opsplane-e2e --bench locks

echo "== Workflows: state transitions, Lambda invocations and cost per run"
cargo test -p opsplane-e2e --test e2e -- drill::state_transitions --nocapture 2>&1 | grep BENCHMARK

echo "== Fleet runs: 1,000 instances backed up within the RDS request budget; a drill rotation night"
cargo test -p opsplane-e2e --test e2e -- fleet_runs:: --nocapture 2>&1 | grep BENCHMARK

echo "== The demo in the modelled world: wall time after the build"
cargo build --quiet -p opsplane-cli
/usr/bin/time -f "demo: %e s wall" cargo run --quiet -p opsplane-cli -- demo >/dev/null
