"""The `sinergi` command run in this process against the database at a URL, as an operator
runs it there: its exit status and what it printed."""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Mapping
from unittest import mock

from sinergi.cli import main


def sinergi(url: str, *argv: str, env: Mapping[str, str] | None = None) -> tuple[int, str, str]:
    """`sinergi ARGV…` with DATABASE_URL=`url` and `env`: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with (
        mock.patch.dict(os.environ, {"DATABASE_URL": url, **(env or {})}),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()
