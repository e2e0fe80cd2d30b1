#!/usr/bin/env bash
# Install the backend into backend/.venv with exactly the versions in backend/poetry.lock.
# Needs only Python 3.11+. A second run with an unchanged lock does nothing.
set -euo pipefail
backend="$(cd "$(dirname "${BASH_SOURCE[0]}")/../backend" && pwd)"
venv="$backend/.venv"

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "bootstrap: Python 3.11+ is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi

stamp="$venv/.installed-from-lock"
want=$(cat "$backend/poetry.lock" "$backend/pyproject.toml" | sha256sum | cut -d' ' -f1)
if [[ -x $venv/bin/python && -f $stamp && $(cat "$stamp") == "$want" ]]; then
  exit 0
fi

echo "bootstrap: installing the backend into $venv from poetry.lock"
[[ -x $venv/bin/python ]] || "$python" -m venv "$venv"
requirements=$(mktemp)
trap 'rm -f "$requirements"' EXIT
"$venv/bin/python" "$backend/scripts/requirements_from_lock.py" "$backend/poetry.lock" main dev >"$requirements"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes -r "$requirements"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --editable "$backend"
# Remove what an older lock installed and this one no longer lists (pip itself stays).
stale=$("$venv/bin/python" -m pip freeze --disable-pip-version-check --exclude-editable \
  | cut -d= -f1 | tr 'A-Z_.' 'a-z--' | grep -vxF -f <(cut -d= -f1 "$requirements" | tr 'A-Z_.' 'a-z--') || true)
if [[ -n $stale ]]; then
  "$venv/bin/python" -m pip uninstall --quiet --disable-pip-version-check -y $stale
fi
echo "$want" >"$stamp"
echo "bootstrap: done"
