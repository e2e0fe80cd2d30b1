#!/usr/bin/env bash
# For CI machines without a browser: install Debian's Chromium, which the offline docs test
# (backend/tests/ops/test_docs_offline.py) runs headless against /docs and /redoc. Idempotent.
set -euo pipefail
if command -v chromium >/dev/null; then
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq chromium >/dev/null
command -v chromium >/dev/null
