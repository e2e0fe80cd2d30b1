"""app/core/ is the foundation: its modules import nothing above it.

Parsed, not imported: every `import` and `from ... import` in every module under app/core/ (at any
depth, inside functions too). Of the app, core may import only app.core; the HTTP frameworks belong
to app/api/.
"""

import ast
from pathlib import Path

import pytest

from app.core.config import BACKEND_DIR

CORE = BACKEND_DIR / "app" / "core"
FRAMEWORKS = ("fastapi", "starlette")


def module_name(path: Path) -> str:
    parts = path.relative_to(BACKEND_DIR).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: str, module: str, *, package: bool = False) -> list[str]:
    """Every module `source` (the text of `module`) imports, relative imports resolved."""
    base = module.split(".") if package else module.split(".")[:-1]
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            parent = base[: len(base) - node.level + 1] if node.level else []
            origin = ".".join([*parent, *(node.module or "").split(".")]).strip(".")
            # `from app import crud` imports the module app.crud: name it, not just `app`.
            names.extend(f"{origin}.{alias.name}" for alias in node.names)
    return names


def above_core(name: str) -> bool:
    top = name.split(".")[0]
    if top in FRAMEWORKS:
        return True
    if top != "app":
        return False
    return name.split(".")[:2] != ["app", "core"] and name not in ("app", "app.__init__")


def violations(source: str, module: str, *, package: bool = False) -> list[str]:
    return sorted({name for name in imported(source, module, package=package) if above_core(name)})


CORE_MODULES = sorted(CORE.rglob("*.py"))


def test_the_core_package_has_modules() -> None:
    assert {path.name for path in CORE_MODULES} >= {"config.py", "database.py", "security.py", "clock.py"}


@pytest.mark.parametrize("path", CORE_MODULES, ids=lambda path: path.name)
def test_core_imports_nothing_above_it(path: Path) -> None:
    module = module_name(path)
    found = violations(path.read_text(encoding="utf-8"), module, package=path.name == "__init__.py")
    assert found == [], f"{module} imports {', '.join(found)}: core may import only app.core"


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("from app import crud\n", ["app.crud"]),
        ("from app.models import utcnow\n", ["app.models.utcnow"]),
        ("import app.api.deps\n", ["app.api.deps"]),
        ("from fastapi.responses import JSONResponse\n", ["fastapi.responses.JSONResponse"]),
        ("import starlette\n", ["starlette"]),
        ("def f():\n    from ..crud import users\n", ["app.crud.users"]),
        ("from . import request_context\nfrom app.core.types import MAX_ID\nimport sqlalchemy\n", []),
    ],
)
def test_the_check_finds_what_core_must_not_import(source: str, found: list[str]) -> None:
    assert violations(source, "app.core.example") == found
