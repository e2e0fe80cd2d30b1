"""`pip install -e 'backend[dev]'` gets the development tools: the `dev` extra exists, equals the
`dev` dependency group (which Poetry and scripts/bootstrap.sh install), and resolves to what the
lock pins."""

import importlib.metadata
import importlib.util
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.markers import Marker, UndefinedEnvironmentName
from packaging.requirements import Requirement

from app.core.config import BACKEND_DIR


def pyproject() -> dict[str, object]:
    with open(BACKEND_DIR / "pyproject.toml", "rb") as handle:
        return tomllib.load(handle)


def test_the_dev_extra_equals_the_dev_group() -> None:
    project = pyproject()
    extra = project["project"]["optional-dependencies"]["dev"]  # type: ignore[index]
    group = project["dependency-groups"]["dev"]  # type: ignore[index]
    assert sorted(extra) == sorted(group)
    assert any(Requirement(r.replace(" (", "").replace(")", "")).name == "pytest" for r in extra)


def test_the_installed_package_offers_the_extra_and_it_resolves() -> None:
    metadata = importlib.metadata.metadata("incident-desk")
    assert "dev" in (metadata.get_all("Provides-Extra") or [])
    wanted = [Requirement(r) for r in importlib.metadata.requires("incident-desk") or []]
    dev = [r for r in wanted if r.marker is not None and r.marker.evaluate({"extra": "dev"})]
    assert {r.name for r in dev} >= {"pytest", "pytest-xdist", "coverage", "ruff", "mypy"}
    for requirement in dev:  # what the lock installed satisfies the extra
        installed = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (requirement, installed)


def test_the_lock_reader_works_with_the_packaging_old_pips_vendor(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """scripts/requirements_from_lock.py runs in a bare venv on pip's vendored `packaging`; the one
    in pip 23.2 (Python 3.11.7's) raises on `extra == "dev"` markers unless `extra` is given."""
    spec = importlib.util.spec_from_file_location(
        "lock_reader", BACKEND_DIR / "scripts/requirements_from_lock.py"
    )
    assert spec is not None and spec.loader is not None
    reader = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reader)

    class OldMarker(Marker):
        def evaluate(self, environment: dict[str, str] | None = None, *args: Any, **kwargs: Any) -> bool:
            if environment is None or "extra" not in environment:
                raise UndefinedEnvironmentName("'extra' does not exist in evaluation environment.")
            return super().evaluate(environment, *args, **kwargs)

    monkeypatch.setattr(reader, "Marker", OldMarker)
    listed = {}
    for groups in (["main"], ["main", "dev"]):
        monkeypatch.setattr(
            sys, "argv", ["requirements_from_lock.py", str(BACKEND_DIR / "poetry.lock"), *groups]
        )
        reader.main()
        listed[len(groups)] = {line.split("==")[0] for line in capsys.readouterr().out.splitlines()}
    assert {"fastapi", "sqlmodel", "aiosqlite"} <= listed[1]
    assert not listed[1] & {"pytest", "mypy", "ruff"}  # main only: marked `extra == "dev"` or dev group
    assert {"pytest", "mypy", "ruff"} <= listed[2]


@pytest.mark.parametrize("last_line", ['. "$HOME/.cargo/env"', '. "$HOME/.cargo/env"\n', ""])
def test_install_poetry_puts_its_path_line_on_a_line_of_its_own(tmp_path: Path, last_line: str) -> None:
    """A ~/.profile whose last line lacks a newline (as rustup leaves it) must not swallow the PATH
    line into that line: a new shell would then find no `poetry`."""
    script = BACKEND_DIR.parent / "scripts" / "install-poetry.sh"
    if not script.exists():
        pytest.skip("scripts/ is outside ./backend (not in the development image): run on the host")
    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    (home / ".profile").write_text(last_line)
    version = re.search(r"POETRY_VERSION=([0-9.]+)", (BACKEND_DIR / "Dockerfile").read_text())
    assert version is not None
    fake = data / "incident-desk" / f"poetry-{version[1]}" / "bin" / "poetry"  # skips the real install
    fake.parent.mkdir(parents=True)
    fake.write_text("#!/bin/sh\necho 'Poetry (fake)'\n")
    fake.chmod(0o755)
    env = {"HOME": str(home), "XDG_DATA_HOME": str(data), "PATH": "/usr/bin:/bin"}
    for _ in range(2):  # safe to run again: one line, once
        subprocess.run(["bash", str(script)], env=env, check=True, capture_output=True, text=True)
    profile = (home / ".profile").read_text()
    path_line = (
        f'export PATH="{home}/.local/bin:$PATH"  # Poetry for Incident Desk (scripts/install-poetry.sh)'
    )
    assert profile.splitlines().count(path_line) == 1, profile
    assert profile.startswith(last_line.rstrip("\n"))
    shell = subprocess.run(
        ["bash", "-c", f". {home}/.profile 2>/dev/null; command -v poetry"],
        env={**env, "HOME": str(home)},
        capture_output=True,
        text=True,
    )
    assert shell.stdout.strip() == f"{home}/.local/bin/poetry", profile
