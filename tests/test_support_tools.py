"""tests/support/tools.py: a test wanting a tool skips on a developer's machine, fails in CI."""

from __future__ import annotations

import pytest

from tests.support import tools


def test_a_missing_tool_skips_the_test_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no frobnicator"):
        tools.missing("no frobnicator: apt-get install frobnicator")


def test_a_missing_tool_fails_the_test_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    """A skip in CI passes unread: the tool the test needs is part of CI's machine."""
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have it: no frobnicator"):
        tools.missing("no frobnicator: apt-get install frobnicator")
