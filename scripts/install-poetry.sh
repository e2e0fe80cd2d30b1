#!/usr/bin/env bash
# Install the Poetry version this project is locked with, for `poetry run db ...` and friends:
#   bash scripts/install-poetry.sh
# It gets a virtualenv of its own (~/.local/share/incident-desk/poetry-<version>) and a link in
# ~/.local/bin; if that folder is not on PATH, a line in ~/.profile puts it there for new shells (as
# rustup and pipx do). Safe to run again.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version=$(sed -n 's/^ *POETRY_VERSION=\([0-9.]*\).*/\1/p' "$root/backend/Dockerfile" | head -n 1)
[[ -n $version ]] || { echo "install-poetry: no POETRY_VERSION in backend/Dockerfile" >&2; exit 1; }
home="${XDG_DATA_HOME:-$HOME/.local/share}/incident-desk/poetry-$version"
bin="${POETRY_BIN_DIR:-$HOME/.local/bin}"
python=${PYTHON:-python3}
if [[ ! -x $home/bin/poetry ]]; then
  "$python" -m venv "$home"
  "$home/bin/pip" install --quiet --disable-pip-version-check "poetry==$version"
fi
mkdir -p "$bin"
ln -sf "$home/bin/poetry" "$bin/poetry"
"$bin/poetry" --version
case ":$PATH:" in
  *":$bin:"*) ;;
  *)
    line="export PATH=\"$bin:\$PATH\"  # Poetry for Incident Desk (scripts/install-poetry.sh)"
    profile="$HOME/.profile"
    if ! grep -qsF "$line" "$profile"; then
      # A profile whose last line has no newline would swallow ours into that line.
      if [[ -s $profile && -n $(tail -c 1 "$profile") ]]; then echo >>"$profile"; fi
      echo "$line" >>"$profile"
    fi
    echo "install-poetry: $bin is on PATH in new login shells (~/.profile); in this one: export PATH=\"$bin:\$PATH\""
    ;;
esac
