#!/usr/bin/env bash
# Times a first run as a new user has it (docs/BENCHMARKS.md, "From a fresh clone"): a fresh clone of this
# repository, no .venv, no pip cache, a cold cargo target directory inside the clone; then `make demo` (to its
# first line and to its end) and `make test`. Usage: scripts/fresh-clone-bench.sh [WORKDIR]
set -uo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="${1:-$(mktemp -d)}"
rm -rf "$work/clone" && git clone -q "$repo" "$work/clone" && cd "$work/clone" || exit 1
unset CARGO_TARGET_DIR
export PIP_NO_CACHE_DIR=1

start=$(date +%s.%N)
first=""
make demo 2>"$work/demo.err" | while IFS= read -r line; do
  # The demo's own first line ("== local AWS world: ..."), not make's echo of its recipes.
  if [ -z "$first" ] && [[ "$line" == "== "* ]]; then
    first=1
    echo "demo: first line after $(echo "$(date +%s.%N) - $start" | bc) s"
  fi
  echo "$line" >>"$work/demo.out"
done
echo "demo: exit ${PIPESTATUS[0]}, ended after $(echo "$(date +%s.%N) - $start" | bc) s"

start=$(date +%s.%N)
make test >"$work/test.out" 2>&1
echo "make test: exit $?, $(echo "$(date +%s.%N) - $start" | bc) s"
