#!/usr/bin/env bash
# Before the API starts (the compose `prestart` service, and scripts/dev.sh on the host):
# wait for the database, migrate it to head (`db migrate` also adopts a matching schema made
# without alembic), seed demo data into an empty database when SEED_DEMO_DATA=1 (scripts/dev.sh
# sets it), then create the first admin if it does not exist.
set -euo pipefail
cd "$(dirname "$0")/.."
# The virtualenv's tools whether or not it is activated (in the container it is on PATH already).
if [[ -x .venv/bin/python ]]; then export PATH="$PWD/.venv/bin:$PATH"; fi
db wait  # up to DB_WAIT_SECONDS (the environment or .env; 60 by default)
db migrate
if [[ ${SEED_DEMO_DATA:-0} == 1 ]]; then
  db seed --if-empty --tickets "${SEED_DEMO_TICKETS:-300}" --users "${SEED_DEMO_USERS:-60}" --teams 6
fi
db create-superuser --from-settings
