#!/usr/bin/env bash
# Runs the ASL conformance corpus through the local engine and fails when a score drops below its floor.
#
#   scripts/conformance.sh [--release]
#
# The corpus is read in place from $OPSPLANE_CONFORMANCE_DIR, else ../shared/conformance relative to the
# repository root; it is never copied into the repository. A missing corpus is an error, not a pass.
# Builds the CLI with cargo (honours CARGO_TARGET_DIR). Reports go to $CONFORMANCE_REPORT_DIR if set.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

profile=debug
cargo_flags=()
if [[ "${1:-}" == "--release" ]]; then
    profile=release
    cargo_flags=(--release)
fi

corpus="${OPSPLANE_CONFORMANCE_DIR:-$root/../shared/conformance}"
if [[ ! -d "$corpus/asl" ]]; then
    echo "conformance: corpus not found at $corpus/asl (set OPSPLANE_CONFORMANCE_DIR); nothing was run" >&2
    exit 2
fi
for f in asl_pure_exact.jsonl asl_lambda.jsonl asl_test_state.jsonl asl_invalid_definitions.jsonl; do
    if [[ ! -f "$corpus/asl/$f" ]]; then
        echo "conformance: $corpus/asl/$f is missing; nothing was run" >&2
        exit 2
    fi
done

cargo build --quiet -p opsplane-cli "${cargo_flags[@]}"
target="${CARGO_TARGET_DIR:-$root/target}"
bin="$target/$profile/opsplane"

report_args() {
    if [[ -n "${CONFORMANCE_REPORT_DIR:-}" ]]; then
        mkdir -p "$CONFORMANCE_REPORT_DIR"
        echo "--report" "$CONFORMANCE_REPORT_DIR/$1.report.json"
    fi
}

status=0
run() {
    local file="$1"
    shift
    echo "== $file"
    # shellcheck disable=SC2046
    if ! "$bin" asl conformance "$corpus/asl/$file.jsonl" --corpus-dir "$corpus" $(report_args "$file") "$@" | tail -n 1; then
        status=1
    fi
}

# Floors, each at or just under the score reached (see docs/CONFORMANCE.md).
# Executions: status plus exact output or error name; every valid definition must be accepted.
run asl_pure_exact --min-percent 99 --min-jsonpath-percent 99 --require-valid
run asl_lambda --min-percent 98 --require-valid
# TestState: status, output, error and next state.
run asl_test_state --min-percent 98
# Every case here is a definition AWS rejected: the share we reject too, and the share of validation
# answers in AWS's shape (result FAIL, coded diagnostics at JSON-pointer locations, AWS's code, location
# and message where the recording carries them).
run asl_invalid_definitions --min-percent 97 --min-shape-percent 97

if [[ $status -ne 0 ]]; then
    echo "conformance: a floor was missed" >&2
fi
exit $status
