"""The docs' examples, run the way a reader would run them (DEVELOPMENT.md, "Examples in the docs").

Every shell block in README.md, USAGE.md, DEVELOPMENT.md and BENCHMARKS.md says in its info string
whether it runs: ```bash example (commands: they must exit 0), ```console example (a transcript:
each `$ ` line is a command, the lines after it are its output, `...` standing for any text) or
```bash no-run (shown only: Docker, a running server, PostgreSQL, the network, a terminal, minutes).

Each example runs from the repository root in a new terminal's environment (the virtualenv not
activated, no setting in the environment) against an empty scratch database of its own, with local
data in a temporary folder. Also: every `db` command has a runnable example, and USAGE.md's
configuration table lists every setting with its default.
"""

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import app as db_app
from app.core.config import BACKEND_DIR, Settings
from tests.databases import scratch_database

ROOT = BACKEND_DIR.parent
DOCS = ("README.md", "USAGE.md", "DEVELOPMENT.md", "BENCHMARKS.md")
SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
RUN, NO_RUN = "example", "no-run"
VENV_BIN = Path(sys.executable).parent
POETRY_HOME_BIN = Path.home() / ".local" / "bin"  # where scripts/install-poetry.sh links poetry
TIMEOUT_SECONDS = 120

pytestmark = pytest.mark.skipif(
    not (ROOT / "USAGE.md").exists(),
    reason="the docs are outside ./backend (not in the development image): run on the host",
)

_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    doc: str
    line: int  # the opening fence's, 1-based
    language: str
    markers: frozenset[str]
    lines: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.doc}:{self.line}"

    @property
    def text(self) -> str:
        return "".join(f"{line}\n" for line in self.lines)


def code_blocks(doc: str) -> list[Block]:
    """The fenced blocks of a Markdown file, list items' indented fences included."""
    lines = (ROOT / doc).read_text().splitlines()
    blocks, index = [], 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, fence = len(opening["indent"]), opening["fence"]
        closing = re.compile(rf" *{re.escape(fence[0])}{{{len(fence)},}} *")
        words = opening["info"].split()
        end = index + 1
        while end < len(lines) and not closing.fullmatch(lines[end]):
            end += 1
        body = tuple(line[indent:] if not line[:indent].strip() else line for line in lines[index + 1 : end])
        blocks.append(Block(doc, index + 1, words[0] if words else "", frozenset(words[1:]), body))
        index = end + 1
    return blocks


BLOCKS = [block for doc in DOCS if (ROOT / doc).exists() for block in code_blocks(doc)]
SHELL_BLOCKS = [block for block in BLOCKS if block.language in SHELL_LANGUAGES]
EXAMPLES = [block for block in SHELL_BLOCKS if block.markers == {RUN}]


def test_every_shell_block_says_whether_it_runs() -> None:
    unmarked = [
        f"{block.name}: ```{block.language} {' '.join(sorted(block.markers))}".rstrip()
        for block in SHELL_BLOCKS
        if block.markers not in ({RUN}, {NO_RUN})
    ]
    assert unmarked == [], f"mark each with `{RUN}` or `{NO_RUN}` (DEVELOPMENT.md, 'Examples in the docs')"


def test_every_db_command_has_a_runnable_example() -> None:
    names = {
        command.name or getattr(command.callback, "__name__", "").replace("_", "-")
        for command in db_app.registered_commands
    }
    wanted = {f"db {name}" for name in names} | {
        "db --help",
        "poetry run db --help",
        "db downgrade -1",
        "db reset --yes",
        "db seed --yes",
        "db create-superuser --from-settings",
    }
    examples = "".join(block.text for block in EXAMPLES)
    assert sorted(w for w in wanted if not re.search(rf"\b{re.escape(w)}(?![\w-])", examples)) == []


# What a new terminal would not have: the tests' own variables, an activated virtualenv, a terminal's
# size and colours, and coverage's subprocess hook (these runs check the docs, not the code's coverage,
# and would be slower measured).
IGNORED = frozenset(
    {"TEST_DATABASE_URL", "VIRTUAL_ENV", "COLUMNS", "LINES", "FORCE_COLOR"}
    | {"COVERAGE_PROCESS_START", "COVERAGE_PROCESS_CONFIG"}
)


def new_shell_env(database_url: str, data_dir: Path) -> dict[str, str]:
    """A new terminal's environment: the virtualenv not on PATH, Poetry on it when installed where
    scripts/install-poetry.sh puts it, no setting but the scratch database and the data folder."""
    settings = {name.upper() for name in Settings.model_fields}
    env = {
        key: value
        for key, value in os.environ.items()
        if key.upper() not in settings and not key.startswith("PYTEST_") and key not in IGNORED
    }
    path = [p for p in env.get("PATH", "").split(os.pathsep) if p and Path(p) != VENV_BIN]
    if (POETRY_HOME_BIN / "poetry").exists() and str(POETRY_HOME_BIN) not in path:
        path.append(str(POETRY_HOME_BIN))
    env.update(PATH=os.pathsep.join(path), DATABASE_URL=database_url, DATA_DIR=str(data_dir))
    return env


def skip_reason(block: Block, env: dict[str, str]) -> str | None:
    if re.search(r"\bpoetry\b", block.text) and shutil.which("poetry", path=env["PATH"]) is None:
        return "Poetry is not installed (bash scripts/install-poetry.sh)"
    if ".venv/bin/" in block.text and not (BACKEND_DIR / ".venv" / "bin" / "db").exists():
        return "no backend/.venv (bash scripts/bootstrap.sh)"
    return None


def run_shell(script: str, env: dict[str, str], *, errexit: bool) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", *(["-e"] if errexit else []), "-o", "pipefail", "-c", script],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=TIMEOUT_SECONDS,
    )


@dataclass
class Step:
    line: int  # of the `$ ` line in its document
    command: str
    expected: list[str]


def transcript(block: Block) -> list[Step]:
    steps: list[Step] = []
    for offset, line in enumerate(block.lines, start=block.line + 1):
        if line.startswith("$ "):
            steps.append(Step(offset, line[2:], []))
        elif steps:
            steps[-1].expected.append(line)
        else:
            assert not line.strip(), f"{block.doc}:{offset}: output before the first `$ ` command"
    assert steps, f"{block.name}: a console example without a `$ ` command"
    return steps


def visible(lines: list[str]) -> list[str]:
    return [line.rstrip() for line in lines if line.strip()]


def matches(expected: list[str], actual: list[str]) -> bool:
    """Line by line; `...` stands for any text in a line, a line of only `...` for any lines."""
    pattern = "".join(
        r"(?:.*\n)*" if line.strip() == "..." else re.escape(line).replace(re.escape("..."), ".*") + r"\n"
        for line in visible(expected)
    )
    return re.fullmatch(pattern, "".join(f"{line}\n" for line in visible(actual))) is not None


def transcript_problem(block: Block, env: dict[str, str]) -> str | None:
    """Run a console example's commands in one shell; what differs from the docs, if anything."""
    steps = transcript(block)
    marker = "@@docs-step-{}@@"
    script = "".join(
        f"printf '\\n%s\\n' '{marker.format(i)}'\n{step.command}\n" for i, step in enumerate(steps)
    )
    result = run_shell(script, env, errexit=False)
    outputs = re.split(r"^@@docs-step-\d+@@$", result.stdout, flags=re.MULTILINE)[1:]
    if len(outputs) != len(steps):
        return f"{block.name}: the transcript stopped early:\n{result.stdout}"
    for step, output in zip(steps, outputs, strict=True):
        actual = output.splitlines()
        if not matches(step.expected, actual):
            shown_now, shown_in_docs = "\n".join(visible(actual)), "\n".join(visible(step.expected))
            return (
                f"{block.doc}:{step.line}: `{step.command}` printed\n{shown_now}\n\n"
                f"where the docs show\n{shown_in_docs}"
            )
    return None


def script_problem(block: Block, env: dict[str, str]) -> str | None:
    result = run_shell(block.text, env, errexit=True)
    return f"{block.name} exited {result.returncode}:\n{result.stdout}" if result.returncode else None


@pytest.mark.parametrize("block", EXAMPLES, ids=lambda block: block.name)
def test_doc_example_runs(block: Block, tmp_path: Path) -> None:
    if reason := skip_reason(block, new_shell_env("", tmp_path)):
        pytest.skip(reason)
    with scratch_database() as url:  # failing only after it is dropped
        env = new_shell_env(url, tmp_path / "data")
        problem = (
            transcript_problem(block, env) if block.language == "console" else script_problem(block, env)
        )
    if problem:
        pytest.fail(problem, pytrace=False)


def documented_defaults() -> dict[str, str]:
    """`Setting` -> its Default cell, from the tables of USAGE.md's "Configuration" section."""
    usage = (ROOT / "USAGE.md").read_text()
    section = usage.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \| ([^|]*) \|", section, flags=re.MULTILINE))


def shown(cell: str) -> str:
    cell = cell.strip()
    if cell.startswith("empty"):
        return ""
    value = re.match(r"`([^`]*)`", cell)
    return value[1] if value else cell


def default_of(name: str) -> str:
    value = Settings.model_fields[name].default
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return value.name
    return "" if value in ("", [], None) else str(value)


def test_the_configuration_table_lists_every_setting_with_its_default() -> None:
    documented = documented_defaults()
    assert sorted(set(Settings.model_fields) - set(documented)) == []
    wrong = {
        name: (shown(documented[name]), default_of(name))
        for name in Settings.model_fields
        if shown(documented[name]) != default_of(name)
    }
    assert wrong == {}, "setting: (USAGE.md's default, the code's)"
