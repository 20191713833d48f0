"""A checkpoint file that cannot be written: `serve` refuses to start on it, and a file that
stops being writable while serving (a full disk, a file made read-only) stops no sealing round,
nor the rounds after it, and is counted and logged each time."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from db.engine import autocommit, create_engine
from db.queries.audit import AuditWriter
from sinergi.audit_sealer import AuditSealer
from tests.support.databases import as_service

FAILURES = "sinergi_audit_checkpoint_failures_total"


def test_serve_refuses_a_checkpoint_path_it_cannot_write(fresh_url: str) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": fresh_url,
        "SINERGI_AUDIT_CHECKPOINTS": "/proc/nonexistent/cp.jsonl",
    }
    refused = subprocess.run(
        [sys.executable, "-m", "sinergi.cli", "serve"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert refused.returncode == 2
    assert refused.stderr == (
        "sinergi: cannot write the audit checkpoint file /proc/nonexistent/cp.jsonl"
        " (SINERGI_AUDIT_CHECKPOINTS): No such file or directory\n"
    )


async def _until(condition: Callable[[], bool]) -> None:
    for _ in range(400):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the sealer did not get there within 20 s")


def test_a_checkpoint_file_that_cannot_be_written_stops_no_sealing_round(
    fresh_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints = tmp_path / "audit-checkpoints.jsonl"
    checkpoints.mkdir()  # a directory where the file should be: appending fails
    before = REGISTRY.get_sample_value(FAILURES) or 0

    async def scenario() -> None:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)
        writer = AuditWriter(autocommit(engine), bytes(32))
        sealer = AuditSealer(engine, bytes(32), checkpoints, 0.05)
        try:
            sealer.start()
            for failures in (1, 2):  # each round that seals an entry fails to append
                await writer.append(client_id="unwritable", entry={}, subjects=[])
                await _until(
                    lambda n=failures: (REGISTRY.get_sample_value(FAILURES) or 0) - before >= n
                )
            checkpoints.rmdir()  # writable again: the next round that seals appends
            await writer.append(client_id="unwritable", entry={}, subjects=[])
            await _until(checkpoints.is_file)
            await sealer.stop()
        finally:
            await engine.dispose()

    with caplog.at_level(logging.ERROR, logger="sinergi.audit"):
        asyncio.run(scenario())
    assert "could not append an audit checkpoint" in caplog.text
    assert checkpoints.read_text().count("\n") >= 1
