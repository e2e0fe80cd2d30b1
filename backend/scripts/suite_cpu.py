"""Where the test suite's time goes: runs it, then prints its CPU by kind and by file.

    .venv/bin/python scripts/suite_cpu.py                  # bash scripts/test.sh (coverage), as CI
    .venv/bin/python scripts/suite_cpu.py --no-coverage    # pytest -n auto, no tracer
    .venv/bin/python scripts/suite_cpu.py -- -k tickets    # extra arguments go to pytest

Each test's CPU comes from tests/cpu_report.py (its process's and its child processes'). On a
shared machine the wall time moves with the neighbours; the CPU does not, and CPU / cores is the
shortest wall time the suite could have with these cores kept busy all the time.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

BACKEND = Path(__file__).resolve().parent.parent
FUZZ = "tests/ops/test_fuzz.py"


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--no-coverage", action="store_true", help="run pytest without coverage")
    parser.add_argument("--top", type=int, default=15, help="how many files to list (default 15)")
    parser.add_argument("pytest_args", nargs="*", help="extra arguments for pytest (after --)")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="suite-cpu-"))
    env = {**os.environ, "SUITE_CPU_REPORT": str(folder), "PYTHONDONTWRITEBYTECODE": ""}
    if args.no_coverage:
        command = [str(BACKEND / ".venv/bin/pytest"), "-q", "-n", os.environ.get("TEST_WORKERS", "auto")]
    else:
        command = ["bash", "scripts/test.sh", "-q"]
    command += ["-p", "tests.cpu_report", *args.pytest_args]
    started = time.perf_counter()
    before = os.times()
    status = subprocess.run(command, cwd=BACKEND, env=env, stdout=subprocess.DEVNULL, check=False).returncode
    wall = time.perf_counter() - started
    after = os.times()
    everything = (after.children_user - before.children_user) + (
        after.children_system - before.children_system
    )

    kinds: dict[str, float] = defaultdict(float)
    files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
    reports = sorted(folder.glob("*.json"))
    with_workers = any(report.name.startswith("gw") for report in reports)
    for report in reports:
        for row in json.loads(report.read_text()):
            name, own, children = row["test"], row["cpu"], row["children_cpu"]
            if name == "<process>":
                # xdist's controller has reaped its workers: their CPU is in their own reports
                controller = with_workers and not report.name.startswith("gw")
                kinds["processes in all"] += own + (0.0 if controller else children)
                continue
            if name == "<collection>":
                kinds["collection"] += own
                continue
            path = name.split("::")[0]
            entry = files[path]
            entry[0] += own
            entry[1] += children
            entry[2] += 1
            kinds["fuzzing (in process)" if path == FUZZ else "other tests (in process)"] += own
            kinds["child processes the tests start"] += children

    tests = sum(int(entry[2]) for entry in files.values())
    cores = os.cpu_count() or 1
    print(f"command: {' '.join(command)}  (exit {status})")
    print(f"{tests} tests; wall {wall:.1f} s; CPU {everything:.1f} s on {cores} cores")
    print(f"floor at this CPU: {everything / cores:.1f} s (CPU / cores)")
    measured = kinds.pop("processes in all", 0.0)
    for kind, seconds in sorted(kinds.items(), key=lambda item: -item[1]):
        print(f"  {seconds:7.1f} s  {kind}")
    print(
        f"  {measured - sum(kinds.values()):7.1f} s  pytest processes' start-up, teardown, xdist controller"
    )
    print(f"  {everything - measured:7.1f} s  after the reports: exits, coverage combine, HTML, report")
    print(f"the {args.top} files with the most CPU (own + child processes):")
    ranked = sorted(files.items(), key=lambda item: -(item[1][0] + item[1][1]))
    for path, (own, children, count) in ranked[: args.top]:
        print(f"  {own + children:7.1f} s  ({own:6.1f} + {children:6.1f})  {int(count):4d} tests  {path}")
    return status


if __name__ == "__main__":
    sys.exit(main())
