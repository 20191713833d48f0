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
import subprocess
from pathlib import Path
from unittest import mock

import httpx
import pytest

from sinergi.cli import main
from tests.support import tools
from tests.support.databases import as_service
from tests.support.served import served

AUDIT = Path(__file__).resolve().parent / "graphql-http-audit"


@pytest.fixture(scope="module")
def node() -> str:
    """Node.js with graphql-http installed exactly as the lockfile says."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        tools.missing("no Node.js and npm: the graphql-http audit runs on them")
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


@pytest.mark.parametrize("mode", ["development", "production"])
def test_the_graphql_over_http_audit_passes_every_check(
    node: str, fresh_url: str, mode: str
) -> None:
    client_id, secret = _province(fresh_url)
    with served(as_service(fresh_url), mode) as base:
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
