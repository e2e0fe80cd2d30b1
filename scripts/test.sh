#!/usr/bin/env bash
# Run the whole backend test suite with coverage (HTML report: backend/htmlcov/index.html).
# SQLite by default; set TEST_DATABASE_URL=postgresql://... to run it against PostgreSQL.
# Extra arguments go to pytest. Needs only Python 3.11+.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$root/scripts/bootstrap.sh"
export PATH="$root/backend/.venv/bin:$PATH"
exec bash "$root/backend/scripts/tests-start.sh" "$@"
