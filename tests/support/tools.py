"""Programs outside Python that some tests run (Chromium, Node.js, Compose, psql, pg_dump)."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing(reason: str) -> NoReturn:
    """Skips the test for want of a tool on a developer's machine, and fails it in CI
    (`CI=true`), whose machine has every tool (.ci/run installs those it may lack): there a
    skip would pass unread, and the test with it."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must have it: {reason}")
    pytest.skip(reason)
