#!/usr/bin/env bash
# Before the API starts (the compose `prestart` service, and scripts/dev.sh on the host):
# wait for the database, migrate it to head, create the first admin if it does not exist.
set -euo pipefail
db wait --timeout "${DB_WAIT_SECONDS:-60}"
db upgrade
db create-superuser --from-settings
