#!/usr/bin/env bash
# Regenerate requirements/lock.txt, the exact environment the tests pass in, with pip-tools (never by hand).
# Usage, from anywhere:  scripts/lock.sh [--upgrade]
# It resolves setup.py (plus requirements/lock.in) with every extra CI installs (harness, llava, baselines, judge, report, test) for this
# platform (Linux x86-64, CPython 3.11). Then run .ci/run and commit the lock only if the tests pass.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
tools=$(mktemp -d)
trap 'rm -rf "$tools"' EXIT
python3 -m venv "$tools/venv"
"$tools/venv/bin/pip" install -q "pip-tools==7.6.2"
cd "$root"
"$tools/venv/bin/pip-compile" --quiet --strip-extras --no-emit-index-url --no-emit-find-links \
  --extra harness --extra llava --extra baselines --extra judge --extra report --extra test \
  --output-file requirements/lock.txt "$@" setup.py requirements/lock.in
echo "wrote requirements/lock.txt ($(grep -c '==' requirements/lock.txt) pinned packages)"
