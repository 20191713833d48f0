"""Publishing a checkpoint lets the serving process answer requests meanwhile.

A checkpoint is appended and synced to disk, where PostgreSQL's own writes make a sync wait
(0.5 ms typically, 4 ms at worst beside a busy server here; a slower or shared disk waits
longer), and sent to syslog, which may first look up a host name. On the event loop either
would hold every request in flight. Here each waits until a task that steps whenever the loop is
free has stepped: on the event loop it would wait in vain. No clock is read, so a loaded machine
cannot fail it."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from db.engine import autocommit, create_engine
from db.queries.audit import AuditWriter
from sinergi import audit_sealer, checkpoint_file, checkpoint_syslog
from sinergi.audit_sealer import AuditSealer
from sinergi.checkpoint_syslog import SyslogAddress
from tests.support.databases import as_service

WAIT_SECONDS = 10.0
"""How long a write waits for the loop to step before it counts the loop as held."""


def test_a_slow_disk_or_syslog_does_not_hold_the_event_loop(
    fresh_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    appended, sent = checkpoint_file.append, checkpoint_syslog.send
    loop_stepped = threading.Event()
    held: list[str] = []

    def waits_for_the_loop(what: str) -> None:
        loop_stepped.clear()
        if not loop_stepped.wait(timeout=WAIT_SECONDS):
            held.append(what)

    def slow_append(path: Path, line: str) -> None:
        waits_for_the_loop("the checkpoint file")
        appended(path, line)

    def slow_send(address: SyslogAddress, line: str) -> None:
        waits_for_the_loop("syslog")
        sent(address, line)

    monkeypatch.setattr(audit_sealer.checkpoint_file, "append", slow_append)
    monkeypatch.setattr(audit_sealer.checkpoint_syslog, "send", slow_send)
    checkpoints = tmp_path / "audit-checkpoints.jsonl"

    async def scenario() -> None:
        engine = create_engine(as_service(fresh_url), statement_timeout_ms=10_000)

        async def step_whenever_free() -> None:
            while True:
                await asyncio.sleep(0)
                loop_stepped.set()

        try:
            await AuditWriter(autocommit(engine), bytes(32)).append(
                client_id="loop-test", entry={}, subjects=[]
            )
            nowhere = SyslogAddress("unix", path="/no")
            sealer = AuditSealer(engine, bytes(32), checkpoints, 1, nowhere)
            stepping = asyncio.create_task(step_whenever_free())
            try:
                await sealer.publish()
                await sealer.sent()
            finally:
                stepping.cancel()
        finally:
            await engine.dispose()

    asyncio.run(scenario())
    assert checkpoints.read_text().count("\n") == 1  # published
    assert held == [], f"the event loop was held while writing to {' and '.join(held)}"
