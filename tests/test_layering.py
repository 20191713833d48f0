"""Imports flow one way, each package importing only those to its right:
sinergi -> schema -> resolvers -> auth -> db -> domain; and no strawberry below resolvers,
no starlette in domain."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "domain": {"schema", "resolvers", "db", "auth", "sinergi", "strawberry", "starlette"},
    "db": {"schema", "resolvers", "auth", "sinergi", "strawberry"},
    "auth": {"schema", "resolvers", "sinergi", "strawberry"},
    "resolvers": {"schema", "sinergi"},
    "schema": {"sinergi"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_package_does_not_import_layers_above_it(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(_imported_packages(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {path: found for path, found in offenders.items() if found} == {}
