"""`pip install -e 'backend[dev]'` gets the development tools: the `dev` extra exists, equals the
`dev` dependency group (which Poetry and scripts/bootstrap.sh install), and resolves to what the
lock pins."""

import importlib.metadata
import importlib.util
import sys
import tomllib
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
