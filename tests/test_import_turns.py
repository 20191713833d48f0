"""Imports take turns among themselves before they take the MSME register, so a single write waits
behind the one import whose turn it is, never behind every import in flight."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from auth.scopes import OrgKind
from db.engine import create_engine
from tests.support.databases import as_service
from tests.support.graphql import principal, run
from tests.test_import_cli import HEADER
from tests.test_imports import IMPORT, KALTENG, row
from tests.test_record_mutations import CREATE

KALBAR = principal(OrgKind.PROVINCE, "61")
HELD_BY_A, HELD_BY_B, NEW_IN_C = "7741000000001", "7741000000002", "7741000000003"

# Who waits for which advisory lock: an advisory lock on a bigint key shows its low 32 bits as
# `objid` (pg_locks, not pg_stat_activity: the imports connect as another role).
QUEUE = """
SELECT count(*) FILTER (WHERE NOT granted) AS waiting,
       count(*) FILTER (WHERE granted AND mode = 'ExclusiveLock' AND objid::bigint = register)
           AS register_held,
       count(*) FILTER (WHERE NOT granted AND mode = 'ExclusiveLock' AND objid::bigint = register)
           AS imports_queued_for_register
  FROM pg_locks,
       LATERAL (SELECT hashtext('sinergi.import')::bigint & 4294967295 AS register) AS key
 WHERE locktype = 'advisory' AND pid <> pg_backend_pid()
   AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
"""


async def _holding(url: str, nib: str) -> asyncpg.Connection:
    """A transaction holding the record `nib` locked: an import naming it waits, holding its
    turn and the register, until the transaction ends (a lock the test controls)."""
    connection = await asyncpg.connect(url)
    await connection.execute("BEGIN")
    await connection.execute("SELECT 1 FROM msmes WHERE nib = $1 FOR UPDATE", nib)
    return connection


async def _until(
    watcher: asyncpg.Connection, done: Callable[[asyncpg.Record], bool]
) -> asyncpg.Record:
    deadline = time.monotonic() + 120
    while not done(queue := await watcher.fetchrow(QUEUE)):
        assert time.monotonic() < deadline, dict(queue)
        await asyncio.sleep(0.02)
    return queue


def _file(path: Path, nib: str, name: str) -> Path:
    path.write_text(
        HEADER + f"{nib},{name},47112,62.71,62.71.03,2020-01-01,10000000,90000000,2025,1\n",
        encoding="utf-8",
    )
    return path


async def _cli_import(url: str, path: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "sinergi.cli", "import", "msmes", str(path)),
        *("--jurisdiction", "62"),
        env={**os.environ, "DATABASE_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


async def test_a_write_waits_behind_the_one_running_import_not_every_import_in_flight(
    engine: AsyncEngine, reference_url: str, tmp_path: Path
) -> None:
    """Import A runs, held on a record the test keeps locked; imports B and C come after it (B
    names another record the test keeps locked), then another province's `createMsme`. The write
    must not queue behind B and C: once A ends it goes through, before B takes the register.
    (Queued behind B, held as A was, it would wait past its 2 s and be refused.)"""
    created = await run(
        engine, KALTENG, IMPORT, {"rows": [row(HELD_BY_A), row(HELD_BY_B)], "mode": "VALID_ROWS"}
    )
    assert created.data["importMsmes"]["created"] == 2, created
    file_b = _file(tmp_path / "b.csv", HELD_BY_B, "Usaha B")
    file_c = _file(tmp_path / "c.csv", NEW_IN_C, "Usaha C")
    writer = create_engine(as_service(reference_url), statement_timeout_ms=5_000)  # the app's
    watcher = await asyncpg.connect(reference_url)
    holding_a = await _holding(reference_url, HELD_BY_A)
    holding_b = await _holding(reference_url, HELD_BY_B)
    processes: list[asyncio.subprocess.Process] = []
    try:
        a = asyncio.create_task(
            run(
                engine,
                KALTENG,
                IMPORT,
                {"rows": [row(HELD_BY_A, name="Usaha A")], "mode": "VALID_ROWS"},
            )
        )
        await _until(watcher, lambda queue: queue["register_held"] == 1)
        processes.append(await _cli_import(reference_url, file_b))
        await _until(watcher, lambda queue: queue["waiting"] >= 1)
        processes.append(await _cli_import(reference_url, file_c))
        await _until(watcher, lambda queue: queue["waiting"] >= 2)
        business = {
            "nib": "6141000000001",
            "name": "Usaha Barat",
            "kbliCode": "47112",
            "region": "61.71",
            "capital": "100000000",
            "annualTurnover": "300000000",
        }
        write = asyncio.create_task(run(writer, KALBAR, CREATE, {"input": business}))
        queue = await _until(watcher, lambda queue: queue["waiting"] >= 3)
        # The write waits for A alone: B and C wait for their turn, not for the register.
        assert queue["imports_queued_for_register"] == 0, dict(queue)

        await holding_a.execute("ROLLBACK")
        assert (await a).data["importMsmes"]["updated"] == 1
        written = await write
        assert written.errors is None, written.errors
        assert written.data["createMsme"]["nib"] == "6141000000001"

        await holding_b.execute("ROLLBACK")
        for process in processes:
            output, _ = await asyncio.wait_for(process.communicate(), timeout=120)
            assert process.returncode == 0, output.decode()
    finally:
        for process in processes:
            if process.returncode is None:
                process.kill()
                await process.wait()
        for connection in (holding_a, holding_b, watcher):
            await connection.close()
        await writer.dispose()
    names = await run(
        engine,
        KALTENG,
        "query($a: String!, $b: String!, $c: String!) {"
        " a: msme(nib: $a) { name } b: msme(nib: $b) { name } c: msme(nib: $c) { name } }",
        {"a": HELD_BY_A, "b": HELD_BY_B, "c": NEW_IN_C},
    )
    assert names.data == {
        "a": {"name": "Usaha A"},
        "b": {"name": "Usaha B"},
        "c": {"name": "Usaha C"},
    }
