"""`pip install -e 'backend[dev]'` gets the development tools: the `dev` extra exists, equals the
`dev` dependency group (which Poetry and scripts/bootstrap.sh install), and resolves to what the
lock pins."""

import importlib.metadata
import tomllib

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
