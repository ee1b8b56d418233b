"""The packages stand in floors: each imports only lower floors (README, "Project layout")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Package -> floor. A package may import its own modules and any lower floor; `models` and
#: `storage` share a floor and must not import each other (pixels vs. keeping things).
FLOORS = {
    "kernel": 0,
    "models": 1,
    "storage": 1,
    "engine": 2,
    "ingest": 3,
    "service": 4,
    "cli": 5,
}


def _imports(path: Path) -> set[str]:
    """Top-level packages of ours that ``path`` imports, at any depth (lazy imports count)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found.update(n.split(".")[0] for n in names if n.split(".")[0] in FLOORS)
    return found


def _modules(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("package", sorted(FLOORS))
def test_packages_import_only_lower_floors(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)} imports {other}"
        for path in _modules(package)
        for other in _imports(path)
        if other != package and FLOORS[other] >= FLOORS[package]
    ]
    assert not wrong, "\n".join(wrong)


def test_every_package_has_a_floor() -> None:
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "scripts"}
    assert packages == set(FLOORS)


def test_fastapi_stays_in_the_http_edge() -> None:
    for package in ("kernel", "models", "storage", "engine", "ingest"):
        for path in _modules(package):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and node.module:
                    assert not node.module.startswith(("fastapi", "starlette")), path
