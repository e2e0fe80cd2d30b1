#!/usr/bin/env bash
# Run the suite under coverage; the HTML report lands in backend/htmlcov. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
coverage erase
status=0
coverage run -m pytest "$@" || status=$?
coverage combine --quiet
coverage html --quiet
[[ $status -eq 0 ]] || exit "$status"
coverage report
