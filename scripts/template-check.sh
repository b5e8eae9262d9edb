#!/usr/bin/env bash
# The deploy template's static checks, run by `make test`: cfn-lint (the CloudFormation and SAM schemas) and
# checkov (security policies). Either failing fails the run. A finding may only be silenced in the template
# itself, next to the resource, with a written reason: checkov's `Metadata: checkov: skip: [{id, comment}]`
# and cfn-lint's `Metadata: cfn-lint: config: ignore_checks` with a `#` comment saying why; this script
# refuses a skip without one.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

template=${1:-bootstrap/template.yaml}
venv=.venv
for tool in "$venv/bin/cfn-lint" "$venv/checkov/bin/checkov"; do
  [ -x "$tool" ] || { echo "$tool is missing: run make checks" >&2; exit 1; }
done

echo "== cfn-lint $template"
"$venv/bin/cfn-lint" "$template"

echo "== every silenced finding says why"
"$venv/bin/python" - "$template" <<'PY'
import re
import sys

from cfnlint.decode import decode

path = sys.argv[1]
template, errors = decode(path)
if errors:
    sys.exit(f"{path} does not parse: {errors}")
lines = open(path, encoding="utf-8").read().splitlines()
bad = []
for name, resource in template.get("Resources", {}).items():
    meta = resource.get("Metadata", {}) or {}
    for skip in (meta.get("checkov", {}) or {}).get("skip", []) or []:
        if len(str(skip.get("comment", "")).strip()) < 20:
            bad.append(f"{name}: checkov skip {skip.get('id')} has no written reason")
# cfn-lint ignores: the line, or the line before, carries a comment.
for i, line in enumerate(lines):
    if "ignore_checks" in line:
        here = "#" in line
        before = i > 0 and lines[i - 1].strip().startswith("#")
        after = i + 1 < len(lines) and lines[i + 1].strip().startswith("#")
        if not (here or before or after):
            bad.append(f"line {i + 1}: cfn-lint ignore_checks without a comment saying why")
if bad:
    sys.exit("\n".join(bad))
print("ok")
PY

echo "== checkov $template"
# --skip-download: no network; the checks themselves ship with checkov.
"$venv/checkov/bin/checkov" -f "$template" --framework cloudformation --compact --quiet --skip-download
echo "template checks passed"
