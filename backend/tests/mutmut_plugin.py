"""A pytest plugin for mutation testing only (scripts/mutation.sh; mutmut loads it with
`-p tests.mutmut_plugin`, see [tool.mutmut] in pyproject.toml). Never loaded by the suite itself.

The ticket list builds its statements once per query shape and keeps them (functools caches in
app.crud). Under mutmut that would hide a mutant of a statement builder from every test but the
first to use its shape, both when mutmut records which tests reach which function and when a test
runs against a mutant. So each test starts with those caches empty and builds what it uses.
"""

import sys
from collections.abc import Iterator
from typing import Any

import pytest


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
