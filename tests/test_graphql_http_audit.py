"""The GraphQL over HTTP specification's own compliance audit against a live Sinergi.

graphql-http's `auditServer` (version 1.23.1, pinned with its lockfile in
tests/graphql-http-audit/) runs against `uvicorn` serving the app on a free port, in development
and in production mode, with a province's token on every request. Every audit must pass: no
error (a MUST), no warning (a SHOULD), not even a notice (a MAY). Node's `npm ci` installs the
package from the npm registry into tests/graphql-http-audit/node_modules (not committed).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import httpx
import pytest

from sinergi.cli import main
from tests.support.databases import as_service

AUDIT = Path(__file__).resolve().parent / "graphql-http-audit"


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js with graphql-http installed exactly as the lockfile says."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        pytest.skip("npm is not installed: the graphql-http audit runs on Node.js")
    subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
        cwd=AUDIT,
        check=True,
        timeout=300,
    )
    return node


def _province(url: str) -> tuple[str, str]:
    """A province client of the test's own (not a demo client): its id and secret."""
    out = io.StringIO()
    argv = ["clients", "create", "--name", "Audit", "--org-kind", "province"]
    argv += ["--jurisdiction", "62", "--purpose", "GraphQL over HTTP audit", "--json"]
    with mock.patch.dict(os.environ, {"DATABASE_URL": url}), contextlib.redirect_stdout(out):
        assert main(argv) == 0
    created = json.loads(out.getvalue())
    return created["client_id"], created["client_secret"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _served(url: str, mode: str) -> Iterator[str]:
    """uvicorn serving the app over `url`'s database; yields its base URL."""
    port = _free_port()
    env = {
        **os.environ,
        "DATABASE_URL": url,
        "SINERGI_ENV": mode,
        "SINERGI_HOME": tempfile.mkdtemp(prefix="sinergi-audit-"),
        "SINERGI_LOG_LEVEL": "warning",
        # The audit sends its 61 requests at once; on a busy CI machine opening that many
        # connections may take longer than production's timeouts, which this test is not about.
        "SINERGI_DB_CONNECT_TIMEOUT": "60",
        "SINERGI_DB_POOL_TIMEOUT": "60",
        "SINERGI_STATEMENT_TIMEOUT_MS": "60000",
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "uvicorn", "--factory", "sinergi.app:app_from_env"]
    command += ["--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = subprocess.Popen(command, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            assert server.poll() is None, "uvicorn exited"
            assert time.monotonic() < deadline, "uvicorn did not start within 60 s"
            time.sleep(0.2)
        yield base
    finally:
        server.terminate()
        server.wait(30)


@pytest.mark.parametrize("mode", ["development", "production"])
def test_the_graphql_over_http_audit_passes_every_check(
    node: str, fresh_url: str, mode: str
) -> None:
    client_id, secret = _province(fresh_url)
    with _served(as_service(fresh_url), mode) as base:
        issued = httpx.post(
            f"{base}/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(client_id, secret),
        )
        assert issued.status_code == 200, issued.text
        audit = subprocess.run(
            [node, "audit.mjs", f"{base}/graphql", issued.json()["access_token"]],
            cwd=AUDIT,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    results = json.loads(audit.stdout)
    assert len(results) == 61
    failed = [result for result in results if result["status"] != "ok"]
    assert failed == [], json.dumps(failed, indent=1)
