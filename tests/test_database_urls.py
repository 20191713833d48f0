"""DATABASE_URL as hosted PostgreSQL services hand it out: with libpq's `sslmode`. SQLAlchemy's
asyncpg driver takes `ssl` instead (and failed on `sslmode` with a traceback), while asyncpg's
own connections, the listener's and the revocation's, read the URL as libpq does (and sent an
`ssl` on to the server as a setting it refused). Either spelling now works on both paths."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from db.engine import async_url, create_engine
from db.notifications import confirm, libpq_url


def _with(url: str, spelling: str) -> str:
    """`url` asking for no TLS in `spelling` (beside a socket directory's `host`, maybe)."""
    return make_url(url).update_query_dict({spelling: "disable"}).render_as_string(False)


def test_each_path_gets_the_spelling_it_reads() -> None:
    engine_url = async_url("postgresql://u:p@db:5432/sinergi?sslmode=require")
    assert engine_url == "postgresql+asyncpg://u:p@db:5432/sinergi?ssl=require"
    assert libpq_url(make_url(engine_url)) == "postgresql://u:p@db:5432/sinergi?sslmode=require"
    assert async_url("postgresql://u@db/sinergi") == "postgresql+asyncpg://u@db/sinergi"


@pytest.mark.parametrize("spelling", ["sslmode", "ssl"])
def test_a_command_runs_with_either_spelling(demo_url: str, tmp_path: Path, spelling: str) -> None:
    clean = {name: value for name, value in os.environ.items() if not name.startswith("SINERGI_")}
    result = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "clients", "list"],
        env={
            **clean,
            "DATABASE_URL": _with(demo_url, spelling),
            "SINERGI_HOME": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stderr) == (0, "")


@pytest.mark.parametrize("spelling", ["sslmode", "ssl"])
def test_asyncpg_own_connections_take_the_engines_url(demo_url: str, spelling: str) -> None:
    engine = create_engine(_with(demo_url, spelling), statement_timeout_ms=5_000)
    try:
        confirmation = asyncio.run(
            confirm(libpq_url(engine.url), "sinergi_test", "x", timeout_seconds=1)
        )
    finally:
        asyncio.run(engine.dispose())
    # It connected and asked (it raised before); the listeners counted are other tests' servers.
    assert 0 <= confirmation.confirmed <= confirmation.listening
