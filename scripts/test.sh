#!/usr/bin/env bash
# The test command (README, CI): the whole suite; pytest's exit 5 (no tests collected) fails loudly.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p artifacts
"$PY" -m pytest -q --timeout 300 -p no:cacheprovider "$@"
rc=$?
if [ "$rc" -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi
exit "$rc"
