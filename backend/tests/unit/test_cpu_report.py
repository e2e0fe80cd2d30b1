"""tests/cpu_report.py records each test's CPU, its child processes' apart (scripts/suite_cpu.py)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from app.core.config import BACKEND_DIR
from tests.coverage_hook import without_hook

SAMPLE = """
import subprocess, sys, time

def burn(seconds):
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass

def test_works():
    burn(0.2)

def test_starts_a_process():
    subprocess.run([sys.executable, "-c", "import time\\nend = time.process_time() + 0.3\\nwhile time.process_time() < end: pass"], check=True)

def test_waits():
    time.sleep(0.2)
"""


def test_each_test_gets_its_cpu_and_its_child_processes_cpu(tmp_path: Path) -> None:
    (tmp_path / "test_sample.py").write_text(textwrap.dedent(SAMPLE))
    report = tmp_path / "report"
    # A pytest of its own: not an xdist worker of this run (the report is named after the worker).
    env = {name: value for name, value in without_hook().items() if not name.startswith("PYTEST_XDIST")}
    env.update(PYTHONPATH=str(BACKEND_DIR), SUITE_CPU_REPORT=str(report))
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "tests.cpu_report",
            "--rootdir",
            str(tmp_path),
            "test_sample.py",
        ],
        cwd=tmp_path,
        env=env,
        check=True,
        capture_output=True,
    )
    (written,) = report.glob("main-*.json")
    rows = {row["test"]: row for row in json.loads(written.read_text())}
    assert set(rows) == {
        "<collection>",
        "<process>",
        "test_sample.py::test_works",
        "test_sample.py::test_starts_a_process",
        "test_sample.py::test_waits",
    }
    works, child, waits = (
        rows[f"test_sample.py::{name}"] for name in ("test_works", "test_starts_a_process", "test_waits")
    )
    assert 0.2 <= works["cpu"] < 0.5 and works["children_cpu"] == 0
    assert child["children_cpu"] >= 0.3 and child["cpu"] < 0.2
    assert waits["wall"] >= 0.2 and waits["cpu"] < 0.1
    assert rows["<process>"]["cpu"] >= works["cpu"] + rows["<collection>"]["cpu"]
    assert rows["<process>"]["children_cpu"] >= 0.3
