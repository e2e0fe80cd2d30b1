#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
# The virtualenv's tools whether or not it is activated (in the container it is on PATH already).
if [[ -x .venv/bin/python ]]; then export PATH="$PWD/.venv/bin:$PATH"; fi
mypy app
ruff check app tests scripts
ruff format --check app tests scripts
hadolint Dockerfile Dockerfile.production
