"""CI's second pass runs the test modules last to first (`--modules-reversed`, tests/conftest.py),
so that a test leaning on what an earlier module left behind fails on one of the two passes."""

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


def test_modules_reversed_runs_the_modules_last_to_first_each_in_its_own_order() -> None:
    in_order = _collected()
    reversed_ = _collected("--modules-reversed")
    modules = [test.split("::")[0] for test in in_order]
    assert list(dict.fromkeys(modules)) == MODULES  # more than one test in some of them
    assert len(modules) > len(MODULES)
    by_module = {module: [t for t in in_order if t.startswith(module)] for module in MODULES}
    assert reversed_ == [test for module in reversed(MODULES) for test in by_module[module]]
