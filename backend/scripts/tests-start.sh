#!/usr/bin/env bash
# Inside the backend container (or on the host): wait for the test database's server, then run the
# suite (scripts/test.sh; extra args go to pytest). The suite creates the test database if needed.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -x .venv/bin/python ]]; then export PATH="$PWD/.venv/bin:$PATH"; fi
if [[ -n ${TEST_DATABASE_URL:-} ]]; then
  DATABASE_URL=$TEST_DATABASE_URL db wait --server
fi
exec bash scripts/test.sh "$@"
