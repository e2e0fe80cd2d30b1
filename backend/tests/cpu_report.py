"""Where the suite's CPU goes, test by test (scripts/suite_cpu.py reads and sums it).

With SUITE_CPU_REPORT=<folder> set, every pytest process (each xdist worker) writes one JSON file
there: for each test, the CPU its process spent (all threads: the test, its event loop, the app) and
the CPU of the child processes it started and waited for (servers, the CLI, the worker), and its
wall time; the same for collection; and the process's totals. CPU, not wall time, because this
machine is shared and noisy: a test's CPU does not depend on what else runs (BENCHMARKS.md).
"""

import json
import os
import resource
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FOLDER = os.environ.get("SUITE_CPU_REPORT", "")
_rows: list[dict[str, Any]] = []


def _cpu() -> tuple[float, float]:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _measure(name: str) -> Iterator[None]:
    own, children = _cpu()
    started = time.perf_counter()
    yield
    own_after, children_after = _cpu()
    _rows.append(
        {
            "test": name,
            "cpu": own_after - own,
            "children_cpu": children_after - children,
            "wall": time.perf_counter() - started,
        }
    )


if FOLDER:

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
        yield from _measure(item.nodeid)

    @pytest.hookimpl(hookwrapper=True)
    def pytest_collection() -> Iterator[None]:
        yield from _measure("<collection>")

    def pytest_sessionfinish() -> None:
        own, children = _cpu()
        _rows.append({"test": "<process>", "cpu": own, "children_cpu": children, "wall": 0.0})
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        folder = Path(FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{worker}-{os.getpid()}.json").write_text(json.dumps(_rows))
