#!/usr/bin/env bash
set -euo pipefail
cd "$(dirname "$0")/.."
ruff check --fix app tests scripts
ruff format app tests scripts
