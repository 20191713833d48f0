"""Owners' personal data: read only when a client holds `pii:read` and asked for an owner
field; and an owner's NIK alone, to name them as the data subject of an audit entry."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import ColumnElement, Label, ScalarSelect, func, select
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.ext.asyncio import AsyncConnection

from db.models import MSME_OWNERS
from db.queries import Record, any_of


async def of_msmes(
    connection: AsyncConnection, msme_ids: Sequence[int], columns: Collection[str]
) -> dict[int, Record]:
    selected = [MSME_OWNERS.c[name] for name in sorted({"msme_id", *columns})]
    statement = select(*selected).where(any_of(MSME_OWNERS.c.msme_id, msme_ids))
    return {row.msme_id: row for row in await connection.execute(statement)}


def owner_nik(msme_id: ColumnElement[Any]) -> Label[str | None]:
    """The NIK of the owner of the MSME `msme_id` (NULL for a cooperative, or an MSME without an
    owner on record). An MSME's owner is a natural person, the one whose NIK the register keeps
    (R08: "the owner's NIK for an individual's business"), so a decision about the business, and
    a guarantee resting on it, is data about them: read when the business is checked, the NIK is
    stored with the decision (`subject_nik`, migration 0049) and names them as the data subject
    of the audit entries of the decision and its guarantee (resolvers.eligibility.handed_out),
    whoever owns the business later, and goes nowhere else. A cooperative is a legal entity,
    owned by no one person."""
    return _nik_of(msme_id).label("owner_nik")


def owners_kept(kept: ColumnElement[Any], msme_id: ColumnElement[Any]) -> Label[Any]:
    """The NIKs a history row keeps of the owners whose figures it holds (`kept`, migration
    0062), as `owner_niks`: a read of the figures names them whoever owns the business later,
    and after the owner is erased. A row written before that migration kept none (NULL): the
    owner of the MSME `msme_id` now, as such rows were always read (none: a one-element array
    of NULL)."""
    return func.coalesce(kept, array([_nik_of(msme_id)])).label("owner_niks")


def _nik_of(msme_id: ColumnElement[Any]) -> ScalarSelect[Any]:
    return select(MSME_OWNERS.c.nik).where(MSME_OWNERS.c.msme_id == msme_id).scalar_subquery()
