"""An audit trail as a new database has it, grown behind the API's back, and what reading it
cost a connection: for the tests that the chain and the seals cost no more as the trail grows
(tests/test_audit_chain_plans.py, tests/test_audit_sealing_plans.py); a trail written and
sealed as the service does, for the tests of the key and the checkpoints; and a sealed trail
with `sinergi audit verify` run on it, for the tests of what an insider can hide from it
(tests/test_audit_tampering.py, tests/test_audit_forgery.py)."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from db.engine import autocommit, create_engine
from db.queries.audit import AuditWriter
from db.seals import entry_key, entry_mac, new_nonce
from sinergi.audit_sealer import AuditSealer
from sinergi.checkpoint_syslog import SyslogAddress
from sinergi.cli import main
from tests.support.databases import as_service

KEY = secrets.token_bytes(32)
"""The audit key `sealed_trail`'s entries are signed and sealed with, and `verify` checks with."""
ENTRIES = 6
"""The entries of a `sealed_trail`."""

_APPEND = text(
    "INSERT INTO audit_log (client_id, entry, subjects, entry_mac, entry_nonce)"
    " SELECT 'plans-test', '{}'::jsonb, '{}', signed.mac, signed.nonce"
    " FROM unnest(CAST(:macs AS text[]), CAST(:nonces AS text[])) AS signed (mac, nonce)"
)
_READ_BY_SCANS = text(
    "SELECT coalesce(sum(seq_tup_read), 0) FROM pg_stat_xact_user_tables"
    " WHERE relname IN ('audit_log', 'audit_seals')"
)


def one_connection_engine(url: str) -> AsyncEngine:
    """An engine of one connection, whose prepared statements and plans therefore last."""
    return create_engine(url, statement_timeout_ms=30_000, pool_size=1)


async def analyzed_empty(engine: AsyncEngine) -> None:
    """The trail and its seals analyzed while empty, as by a VACUUM ANALYZE after installing."""
    async with engine.connect() as connection:
        await connection.execute(text("COMMIT"))
        await connection.execute(text("ANALYZE audit_log, audit_seals"))


async def append(connection: AsyncConnection, entries: int, key: bytes = bytes(32)) -> None:
    """`entries` entries in one statement, each linked by the chain's trigger and signed as
    the service signs them, with the audit key `key`."""
    signing = entry_key(key)
    nonces = [new_nonce() for _ in range(entries)]
    macs = [entry_mac(signing, nonce, "plans-test", {}, []) for nonce in nonces]
    await connection.execute(_APPEND, {"macs": macs, "nonces": nonces})


async def rows_read_by_scans(connection: AsyncConnection) -> int:
    """The rows of the trail and its seals that the connection's sequential scans have read in
    its transaction (and in those of the last second, whose counts PostgreSQL has not yet
    flushed)."""
    return int((await connection.execute(_READ_BY_SCANS)).scalar_one())


async def written(url: str, key: bytes, entries: int) -> None:
    """`entries` entries written as the service writes them (the owner's `url`), one at a time,
    signed with the audit key `key`."""
    engine = create_engine(as_service(url), statement_timeout_ms=10_000)
    try:
        writer = AuditWriter(autocommit(engine), key)
        for n in range(entries):
            await writer.append(client_id="trail-test", entry={"n": n}, subjects=[])
    finally:
        await engine.dispose()


async def written_and_sealed(url: str, key: bytes, checkpoints: Path, entries: int) -> None:
    """`written`, then sealed and checkpointed with `key` as `serve` seals them."""
    await written(url, key, entries)
    engine = create_engine(as_service(url), statement_timeout_ms=10_000)
    try:
        await AuditSealer(engine, key, checkpoints, 1).publish()
    finally:
        await engine.dispose()


@dataclass(frozen=True)
class Trail:
    """The trail of the database `owner_url` (the owner's URL), its checkpoints published to
    the file `checkpoints`."""

    owner_url: str
    checkpoints: Path


async def written_for_tampering(
    url: str, checkpoints: Path, count: int, *, seal: bool, syslog: SyslogAddress | None = None
) -> None:
    """`count` entries written as the service writes them (each naming a data subject, and
    holding the database's `|` separator), signed with `KEY`; if `seal`, then sealed and
    checkpointed to `checkpoints` (and sent to `syslog`) as `serve` seals them."""
    engine = create_engine(as_service(url), statement_timeout_ms=10_000)
    try:
        writer = AuditWriter(autocommit(engine), KEY)
        for n in range(count):  # one at a time: each its own batch, as lone requests are
            await writer.append(
                client_id="tamper-test", entry={"n": n, "note": "a|b"}, subjects=[f"3171{n:012d}"]
            )
        if seal:
            sealer = AuditSealer(engine, KEY, checkpoints, 1, syslog)
            await sealer.publish()
            await sealer.sent()
    finally:
        await engine.dispose()


async def rewritten_as_owner(owner_url: str, *statements: str) -> None:
    """`statements` run on the trail with its triggers off, which the owner may do and the
    service may not: an insider with the owner's rights (compose's migrate and import containers
    hold them)."""
    connection = await asyncpg.connect(owner_url)
    try:
        async with connection.transaction():
            for table in ("audit_log", "audit_seals"):
                await connection.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
            for statement in statements:
                await connection.execute(statement)
            for table in ("audit_log", "audit_seals"):
                await connection.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")
    finally:
        await connection.close()


def chained_by_hand(entry: str) -> str:
    """An INSERT of one entry chained as the chain's trigger chains one, for the owner to run
    with the trigger off: what an entry the trail's checks refuse needs to be stored (one
    trigger checks and chains, migration 0061). `entry` is the SQL of its `entry`; $1 is its
    client id, $2 its subjects, $3 and $4 its MAC and nonce (NULL for none)."""
    return f"""
    INSERT INTO audit_log
           (seq, at, client_id, entry, subjects, prev_hash, hash, entry_mac, entry_nonce)
    SELECT place.seq, now.at, $1::text, new.entry, $2::text[], place.prev_hash,
           audit_log_hash(place.prev_hash, place.seq, now.at, $1::text, new.entry, $2::text[]),
           $3::text, $4::text
      FROM (SELECT clock_timestamp() AS at) AS now,
           (SELECT {entry} AS entry) AS new,
           (SELECT coalesce(max(seq), 0) + 1 AS seq,
                   coalesce((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), '')
                       AS prev_hash
              FROM audit_log) AS place
    """  # noqa: S608  # the tests' own SQL


async def written_past_the_checks(
    owner_url: str, statement: str, *entries: tuple[Any, ...]
) -> None:
    """`statement` (a `chained_by_hand`) run once for each of `entries`' arguments by the owner
    with the chain's trigger off, which the service's role cannot switch off: an insider with
    the owner's rights, or an entry stored before the checks were made."""
    connection = await asyncpg.connect(owner_url)
    try:
        async with connection.transaction():
            await connection.execute("ALTER TABLE audit_log DISABLE TRIGGER audit_log_chain")
            for arguments in entries:
                await connection.execute(statement, *arguments)
            await connection.execute("ALTER TABLE audit_log ENABLE TRIGGER audit_log_chain")
    finally:
        await connection.close()


def as_owner(trail: Trail, *statements: str) -> None:
    """`rewritten_as_owner`, outside an event loop."""
    asyncio.run(rewritten_as_owner(trail.owner_url, *statements))


def sealed_trail(url: str, checkpoints: Path) -> Trail:
    """`ENTRIES` entries `written_for_tampering` on the database at `url` (the owner's), and
    sealed to `checkpoints`."""
    asyncio.run(written_for_tampering(url, checkpoints, ENTRIES, seal=True))
    return Trail(url, checkpoints)


@dataclass(frozen=True)
class Verified:
    returncode: int
    stdout: str
    stderr: str


def verify(trail: Trail, key: bytes = KEY, *, urls: Mapping[str, str] | None = None) -> Verified:
    """`sinergi audit verify` as an operator runs it, given `urls` (DATABASE_URL, and
    DATABASE_OWNER_URL if any): by default the service's URL alone."""
    out, err = io.StringIO(), io.StringIO()
    env = {
        **(urls or {"DATABASE_URL": as_service(trail.owner_url)}),
        "SINERGI_AUDIT_KEY": key.hex(),
        "SINERGI_AUDIT_CHECKPOINTS": str(trail.checkpoints),
    }
    with (
        mock.patch.dict(os.environ, env),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        returncode = main(["audit", "verify"])
    return Verified(returncode, out.getvalue(), err.getvalue())


async def subjects_and_records(engine: AsyncEngine, operation: str) -> list[tuple[list[str], Any]]:
    """The data subjects and records of every audit entry of the operation named `operation`,
    oldest first."""
    statement = text(
        "SELECT subjects, entry->'records' AS records FROM audit_log"
        " WHERE entry->>'operation' = :operation ORDER BY seq"
    )
    async with engine.connect() as connection:
        rows = await connection.execute(statement, {"operation": operation})
        return [(list(row.subjects), row.records) for row in rows]
