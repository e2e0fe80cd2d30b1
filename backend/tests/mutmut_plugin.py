"""A pytest plugin for mutation testing only (scripts/mutation.sh; mutmut loads it with
`-p tests.mutmut_plugin`, see [tool.mutmut] in pyproject.toml). Never loaded by the suite itself.

The ticket list builds its statements once per query shape and keeps them (functools caches in
app.crud). Under mutmut that would hide a mutant of a statement builder from every test but the
first to use its shape, both when mutmut records which tests reach which function and when a test
runs against a mutant. So each test starts with those caches empty and builds what it uses.

Against a mutant, mutmut runs the tests that reach its function, in no useful order, and stops at
the first failure. So the test files closest to the mutated code run first (FIRST): most mutants
then fail within a few tests instead of after a random half of a few hundred.
"""

import os
import sys
from collections.abc import Iterator
from typing import Any

import pytest

# Mutant name prefix -> the test files that run first, in this order (the longest prefix wins).
_LIFECYCLE = ("tests/api/test_lifecycle.py", "tests/api/test_lifecycle_spec.py")
FIRST: dict[str, tuple[str, ...]] = {
    "app.lifecycle.": ("tests/unit/test_lifecycle_rules.py", *_LIFECYCLE),
    "app.audit.": ("tests/unit/test_lifecycle_rules.py", "tests/api/test_events.py"),
    "app.permissions.": ("tests/api/test_permissions.py",),
    "app.crud.ticket_writes.": ("tests/api/test_ticket_write_hooks.py", "tests/api/test_events.py"),
    "app.crud.tickets.": (
        "tests/api/test_tickets.py",
        "tests/api/test_write_preconditions.py",
        "tests/api/test_events.py",
        *_LIFECYCLE,
    ),
    **{
        f"app.crud.tickets.x_{name}": (*_LIFECYCLE, "tests/api/test_write_preconditions.py")
        for name in ("move_ticket", "_movable", "_may_move", "_mover", "list_transitions")
    },
    "app.crud.ticket_list.": ("tests/api/test_search.py", "tests/api/test_tickets.py"),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mutant = os.environ.get("MUTANT_UNDER_TEST", "")
    prefixes = [prefix for prefix in FIRST if mutant.startswith(prefix)]
    if not prefixes:
        return
    first = FIRST[max(prefixes, key=len)]

    def rank(item: pytest.Item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return first.index(path) if path in first else len(first)

    items.sort(key=rank)  # stable: the rest keep their order


@pytest.fixture(autouse=True)
def _statements_built_afresh() -> Iterator[None]:
    for cached in _crud_caches():
        cached.cache_clear()
    yield


def _crud_caches() -> list[Any]:
    found = []
    for name, module in list(sys.modules.items()):
        if module is None or not (name == "app.crud" or name.startswith("app.crud.")):
            continue
        found += [value for value in vars(module).values() if callable(getattr(value, "cache_clear", None))]
    return found
