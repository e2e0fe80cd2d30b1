#!/usr/bin/env bash
# Mutation testing with mutmut: [tool.mutmut] in pyproject.toml names the files it mutates (the
# lifecycle and role rules, the ticket write and list code) and the tests it runs against each
# mutant. Work and results stay in backend/mutants/ (a rerun goes on where the last one stopped;
# delete it to start over). Then `mutmut results` lists the survivors, `mutmut show NAME` shows one.
# One mutant at a time by default (MUTATION_CHILDREN=N for more): on SQLite, tests of two processes
# would wait on each other's write locks. Extra args go to `mutmut run` (e.g. mutant names).
set -euo pipefail
cd "$(dirname "$0")/.."
# The virtualenv's tools whether or not it is activated (in the container it is on PATH already).
if [[ -x .venv/bin/python ]]; then export PATH="$PWD/.venv/bin:$PATH"; fi
export PYTHONDONTWRITEBYTECODE=
mutmut run --max-children "${MUTATION_CHILDREN:-1}" "$@"
mutmut results
