"""Configuration is read in one place, `Settings.from_env` (sinergi/settings.py): every other
module asks the settings object, so each variable is checked, and refused with a line naming
it, where it is read, and tests build a `Settings` instead of patching the environment."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from sinergi.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sinergi", "auth", "db", "resolvers", "schema", "domain")
ENVIRONMENT = {"environ", "environb", "getenv", "getenvb", "putenv", "unsetenv"}
ALLOWED = {
    ("sinergi/settings.py", None): "the one reader",
    ("sinergi/cli.py", "_hand_to_workers"): "`serve` hands its workers their settings",
}
"""Where the environment may be touched, by file and function (None: anywhere in the file)."""


def _environment_uses(path: Path) -> set[str | None]:
    """The functions of `path` that touch os.environ (or getenv and the like); None: at the
    module's level."""
    found: set[str | None] = set()

    def visit(node: ast.AST, function: str | None) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        touches = (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "os"
            and node.attr in ENVIRONMENT
        ) or (
            isinstance(node, ast.ImportFrom)
            and node.module == "os"
            and any(alias.name in ENVIRONMENT for alias in node.names)
        )
        if touches:
            found.add(function)
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(ast.parse(path.read_text(encoding="utf-8")), None)
    return found


def test_only_the_settings_read_the_environment() -> None:
    offenders = {
        f"{relative}:{function or '<module>'}"
        for package in PACKAGES
        for path in (ROOT / package).rglob("*.py")
        for relative in [str(path.relative_to(ROOT))]
        for function in _environment_uses(path)
        if (relative, None) not in ALLOWED and (relative, function) not in ALLOWED
    }
    assert offenders == set()


@pytest.mark.parametrize(
    ("said", "dev", "ignored"),
    [("1", False, "1"), ("true", False, "true"), ("false", False, ""), ("1", True, "")],
)
def test_serve_dev_flag_overrides_sinergi_dev_and_names_what_it_ignored(
    said: str, dev: bool, ignored: str
) -> None:
    """`serve` passes its --dev: a SINERGI_DEV of the shell's own (`1`, which `from_env` alone
    refuses) neither stops it nor silently does nothing."""
    settings = Settings.from_env({"SINERGI_DEV": said}, dev=dev)
    assert (settings.dev, settings.dev_ignored) == (dev, ignored)


def test_the_home_defaults_under_xdg_data_home() -> None:
    settings = Settings.from_env({"XDG_DATA_HOME": "/data"})
    assert (settings.home, settings.data_home, settings.home_set) == (
        Path("/data/sinergi"),
        Path("/data/sinergi"),
        False,
    )
    named = Settings.from_env({"XDG_DATA_HOME": "/data", "SINERGI_HOME": "/srv/sinergi"})
    assert (named.home, named.data_home, named.home_set) == (
        Path("/srv/sinergi"),
        Path("/data/sinergi"),
        True,
    )
