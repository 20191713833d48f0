"""What day it is comes from one clock: resolvers/calendar.py, in WIB.

The host's `date.today()` is UTC on a server, a day behind WIB from 17:00 to midnight UTC: a
business established on the agencies' today would be refused as in the future, and a check
dated a day apart from the record written with it. A test of the hours cannot fail by day, so
this one reads the source: no module of the service asks the host for the date.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("auth", "db", "domain", "resolvers", "schema", "sinergi")
CLOCK = ROOT / "resolvers" / "calendar.py"


def _asks_the_host_for_today(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "today"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id in {"date", "datetime"}
    )


def test_only_the_calendar_knows_what_day_it_is() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
        if path != CLOCK
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if _asks_the_host_for_today(node)
    ]
    assert offenders == []
