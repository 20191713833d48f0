"""Optimistic concurrency shared by every record table: lock, compare versions, write the diff.

The row is locked (`FOR UPDATE`) before its version is compared, so of two writers holding the
same version exactly one wins: the second waits for the first to commit, then reads the new
version and is refused instead of silently overwriting the first one's change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Executable, Table, func, insert, select, update
from sqlalchemy.engine import CursorResult
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from db.errors import unique_key_taken
from db.queries import Record
from db.writes import Duplicate, NotFound, StaleVersion
from db.writes.history import Actor, record

NaturalKeys = Mapping[str, str]
"""A table's natural keys, each unique constraint's name -> the field a write took it from."""


async def _keyed(
    connection: AsyncConnection, statement: Executable, keys: NaturalKeys
) -> CursorResult[Any]:
    """`statement` run; `Duplicate` naming the field of a natural key it finds already taken.

    The field is where the mutation took the key from (`input.nib`), as every refusal names the
    field by its path from the argument, so a client finds it as it finds a rule's error. The
    failed statement has aborted the transaction, which the refusal then rolls back.
    """
    try:
        return await connection.execute(statement)
    except DBAPIError as error:
        field = keys.get(unique_key_taken(error) or "")
        if field is None:
            raise
        raise Duplicate(field, "is already registered") from None


async def inserted(
    connection: AsyncConnection, table: Table, values: Mapping[str, Any], *, keys: NaturalKeys
) -> Record:
    """The new row; `Duplicate` naming the field of a natural key already registered."""
    statement = insert(table).values(values).returning(*table.c)
    return (await _keyed(connection, statement, keys)).one()


async def locked(
    connection: AsyncConnection,
    table: Table,
    record_id: int,
    visible: ColumnElement[bool],
    *,
    field: str,
    returning: Sequence[ColumnElement[Any]] = (),
) -> Record:
    """The row, locked for this transaction, if `visible` (the jurisdiction rule) admits it;
    else NotFound naming `field`, the argument that gave `record_id`. `returning`: what the
    statement reads beside the row (as `write` returns it)."""
    statement = select(table, *returning).where(table.c.id == record_id, visible)
    row = (await connection.execute(statement.with_for_update(of=table))).first()
    if row is None:
        raise NotFound(field)
    return row


async def write(
    connection: AsyncConnection,
    table: Table,
    current: Record,
    *,
    expected_version: int,
    values: Mapping[str, Any],
    actor: Actor,
    kind: str,
    operation: str,
    personal_fields: Iterable[str] = (),
    keys: NaturalKeys | None = None,
    returning: Sequence[ColumnElement[Any]] = (),
    owner_niks: Sequence[str] | None = None,
) -> Record:
    """Apply `values` to a locked row; nothing changes (not even the version) when nothing differs.

    A history row is written only for a real change, so repeating a request is harmless. A
    change to a natural key another row holds is `Duplicate` naming its field in `keys`.
    `returning`: what the statement returns beside the row (a row left unchanged is `current`,
    which must have been locked reading the same). `owner_niks`: as `history.record`'s.
    """
    if current.version != expected_version:
        raise StaleVersion(current.version)
    row = current._mapping
    changed = {key: value for key, value in values.items() if row[key] != value}
    personal = sorted(personal_fields)
    if not changed and not personal:
        return current
    assignments: dict[str, Any] = {**changed, "version": table.c.version + 1}
    if "updated_at" in table.c:
        assignments["updated_at"] = func.now()
    statement = (
        update(table)
        .where(table.c.id == current.id, table.c.version == expected_version)
        .values(assignments)
        .returning(*table.c, *returning)
    )
    written = (await _keyed(connection, statement, keys or {})).one()
    await record(
        connection,
        actor,
        kind=kind,
        record_id=written.id,
        operation=operation,
        version=written.version,
        before={key: row[key] for key in changed},
        after=changed,
        personal_fields=personal,
        owner_niks=owner_niks,
    )
    return written
