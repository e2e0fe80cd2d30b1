#!/usr/bin/env bash
# Inside the backend container: wait for the test database, then run the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ -n ${TEST_DATABASE_URL:-} ]]; then
  DATABASE_URL=$TEST_DATABASE_URL db wait --timeout "${DB_WAIT_SECONDS:-60}"
fi
exec bash scripts/test.sh "$@"
