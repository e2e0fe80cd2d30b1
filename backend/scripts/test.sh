#!/usr/bin/env bash
# Run the suite under coverage, in parallel (pytest-xdist, one worker per CPU; TEST_WORKERS=N to
# choose, 0 for one process); the HTML report lands in backend/htmlcov. Extra args go to pytest.
# The 90 % coverage floor applies when the whole suite runs (no extra args), not to a partial run.
set -euo pipefail
cd "$(dirname "$0")/.."
# The virtualenv's tools whether or not it is activated (in the container it is on PATH already).
if [[ -x .venv/bin/python ]]; then export PATH="$PWD/.venv/bin:$PATH"; fi
# Keep compiled bytecode (pytest's rewritten test modules and plugins included): a machine-wide
# PYTHONDONTWRITEBYTECODE=1 would have every worker compile them again, seconds per process.
export PYTHONDONTWRITEBYTECODE=
floor=()
[[ $# -eq 0 ]] && floor=(--fail-under=90)
coverage erase
status=0
coverage run -m pytest -n "${TEST_WORKERS:-auto}" "$@" || status=$?
coverage combine --quiet
coverage html --quiet
[[ $status -eq 0 ]] || exit "$status"
coverage report "${floor[@]}"
