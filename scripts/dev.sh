#!/usr/bin/env bash
# Serve Incident Desk on the embedded SQLite database with live reload: http://127.0.0.1:8000/docs
# Installs (once), migrates, seeds a small demo data set on first start (empty database; set
# SEED_DEMO_DATA=0 to skip), creates the first admin, then serves. Needs only Python 3.11+.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
export PATH="$root/backend/.venv/bin:$PATH"
cd "$root/backend"
SEED_DEMO_DATA="${SEED_DEMO_DATA:-1}" bash scripts/prestart.sh
# --no-proxy-headers: the app itself decides whom to believe about client addresses (FORWARDED_ALLOW_IPS).
exec fastapi dev app/main.py --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}" --no-proxy-headers "$@"
