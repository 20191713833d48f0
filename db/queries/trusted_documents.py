"""The operations each client is registered to run, keyed by the sha256 of their text."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import TRUSTED_DOCUMENTS
from db.queries import any_of


async def register(
    connection: AsyncConnection, client_id: str, documents: Sequence[tuple[str, str | None, str]]
) -> None:
    """Add (sha256, name, document) rows; registering a document again changes nothing."""
    if not documents:
        return
    rows = [
        {"client_id": client_id, "sha256": sha256, "name": name, "document": document}
        for sha256, name, document in documents
    ]
    await connection.execute(insert(TRUSTED_DOCUMENTS).values(rows).on_conflict_do_nothing())


async def find(
    connection: AsyncConnection, client_id: str, hashes: Collection[str]
) -> dict[str, str]:
    """sha256 → document, for those of `hashes` registered for the client."""
    if not hashes:
        return {}
    query = select(TRUSTED_DOCUMENTS.c.sha256, TRUSTED_DOCUMENTS.c.document).where(
        TRUSTED_DOCUMENTS.c.client_id == client_id, any_of(TRUSTED_DOCUMENTS.c.sha256, list(hashes))
    )
    return {row.sha256: row.document for row in await connection.execute(query)}
