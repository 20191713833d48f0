"""CI's second pass runs the tests last to first (`--reversed`, tests/conftest.py): the modules,
and the tests within each, so that a test leaning on what an earlier one left behind, in its
module or another, fails on one of the two passes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODULES = ["tests/domain/test_scale.py", "tests/test_layering.py", "tests/test_schema_sdl.py"]


def _collected(*options: str) -> list[str]:
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", *options, *MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [line for line in listed.splitlines() if "::" in line]


def test_reversed_runs_the_modules_last_to_first_and_each_modules_tests_too() -> None:
    in_order = _collected()
    reversed_ = _collected("--reversed")
    by_module = {module: [t for t in in_order if t.startswith(module + "::")] for module in MODULES}
    assert [module for module in MODULES if len(by_module[module]) < 2] == []
    assert in_order == [test for module in MODULES for test in by_module[module]]
    assert reversed_ == [
        test for module in reversed(MODULES) for test in reversed(by_module[module])
    ]
