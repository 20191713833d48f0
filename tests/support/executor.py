"""A compiled answer checked against the executor's: the same document, with a directive on its
record's first field, which no plan compiles, is resolved row by row by the resolvers and their
DataLoaders; the answer and the audit entry must come out the same."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, text

from db.engine import create_engine
from tests.support.http import Api

AT = "<at>"
"""Where `executed` puts its directive."""
AUDITED = ("operation", "records", "fields", "touched", "personalFields")
"""What an audit entry says of the request, compared between the two answers."""


def compiled(document: str) -> str:
    return document.replace(AT, "")


def executed(document: str) -> str:
    """The same document with a directive on its record's first field: the executor answers
    it, row by row, through the resolvers and their DataLoaders."""
    return document.replace(AT, " @include(if: true)")


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    entry: dict[str, Any]
    subjects: list[str]


def latest_entry(url: str, client_id: str) -> AuditRow:
    """The audit log's latest entry of `client_id`, with its place and its data subjects."""
    (row,) = _audit_rows(
        url,
        "SELECT seq, entry, subjects FROM audit_log WHERE client_id = :client"
        " ORDER BY seq DESC LIMIT 1",
        client=client_id,
    )
    return AuditRow(row.seq, row.entry, list(row.subjects))


def entries_after(url: str, client_id: str, seq: int) -> list[AuditRow]:
    """The audit log's entries of `client_id` after place `seq`, oldest first: what requests
    wrote, where the log's latest entry may be an earlier test's."""
    rows = _audit_rows(
        url,
        "SELECT seq, entry, subjects FROM audit_log WHERE client_id = :client AND seq > :seq"
        " ORDER BY seq",
        client=client_id,
        seq=seq,
    )
    return [AuditRow(row.seq, row.entry, list(row.subjects)) for row in rows]


def audit_head(url: str) -> int:
    """The place of the log's latest entry, whoever's (0 when empty)."""
    (row,) = _audit_rows(url, "SELECT coalesce(max(seq), 0) AS seq FROM audit_log")
    return int(row.seq)


def _audit_rows(url: str, query: str, **parameters: object) -> list[Row[Any]]:
    async def read() -> list[Row[Any]]:
        engine = create_engine(url, statement_timeout_ms=10_000, pool_size=1)
        try:
            async with engine.connect() as connection:
                return list(await connection.execute(text(query), parameters))
        finally:
            await engine.dispose()

    return asyncio.run(read())


def assert_the_executor_agrees(
    api: Api, url: str, client_id: str, document: str, variables: dict[str, Any] | None, data: Any
) -> None:
    """The executor answers `document` (AT where its directive goes) with `data`, the answer
    its compiled statement has just given `client_id`, and audits it in a new entry that says
    of the request what the compiled one's does, data subjects included."""
    compiled_entry = latest_entry(url, client_id)
    answer = api.graphql(executed(document), client_id, variables)
    executed_entry = latest_entry(url, client_id)
    assert answer == {"data": data}
    assert executed_entry.seq > compiled_entry.seq
    assert executed_entry.subjects == compiled_entry.subjects
    for key in AUDITED:
        assert executed_entry.entry.get(key) == compiled_entry.entry.get(key), key
