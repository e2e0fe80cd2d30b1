"""Where the suite's coverage measurement would only cost time: code that runs none of app/.

scripts/test.sh runs the suite under `coverage run`, and [tool.coverage.run] patch = ["subprocess"]
puts coverage's hook (COVERAGE_PROCESS_CONFIG) in the environment, so that every Python process a
test starts measures app/ too. A process that runs none of app/ (a code generator, mypy, a load
generator, a nested suite with a coverage run of its own, a process killed with SIGKILL, which never
saves its data) gains nothing from it, and a traced Python process runs about half as fast.
"""

import os
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, cast

T = TypeVar("T")
HOOK = frozenset({"COVERAGE_PROCESS_CONFIG", "COVERAGE_PROCESS_START"})


def without_hook(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's environment) without coverage's subprocess hook."""
    return {k: v for k, v in (os.environ if env is None else env).items() if k not in HOOK}


def untraced(work: Callable[[], T]) -> T:
    """`work()` (which calls none of app/: e.g. an HTTP load generator against a server process) in
    a thread of its own without the tracer, starting no measured Python process; returns its result.

    A thread of its own: turning the tracer off and on again in a running thread would leave the
    tracer's record of that thread's frames out of step (wrong arcs from then on).
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        sys.settrace(None)  # this thread only
        try:
            outcome["value"] = work()
        except BaseException as exc:
            outcome["error"] = exc

    hidden = {name: os.environ.pop(name) for name in HOOK if name in os.environ}
    try:
        thread = threading.Thread(target=run, name="untraced")
        thread.start()
        thread.join()
    finally:
        os.environ.update(hidden)
    if "error" in outcome:
        raise outcome["error"]
    return cast(T, outcome["value"])
