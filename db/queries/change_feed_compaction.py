"""Fold the change feed's old entries into one creation per record that still exists.

The log keeps every change ever made (migration 0014), so it grows with every write, forever.
Compaction keeps what a reader starting from no cursor needs: for each record, only its newest
entry up to the horizon, rewritten as a creation where the record then lay, and nothing of
records that no longer exist. Entries past the horizon are untouched, and each one's "before"
place is where the folded entry leaves the record, so a reader from no cursor still ends with
exactly what a fresh read shows. A reader whose cursor is short of the horizon would miss what
the folded entries said (a move out of its jurisdiction, a deletion), so the feed refuses that
cursor from then on (resolvers/change_feed.py) and its copy starts again.

Run by the owner (`sinergi feed compact`): the service's role may only read the log.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Text, bindparam, cast, delete, exists, func, or_, select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from db.errors import is_lock_timeout
from db.models import COOPERATIVES, GUARANTEES, MSMES, PARTICIPATIONS
from db.queries.change_feed import COOPERATIVE_PLACE_COLUMNS, LOG

RECORD_TABLES = {
    "msme": MSMES,
    "cooperative": COOPERATIVES,
    "participation": PARTICIPATIONS,
    "guarantee": GUARANTEES,
}

_LOCKED_HORIZON = text("SELECT horizon FROM change_log_horizon FOR UPDATE NOWAIT")
_UP_TO = text(
    "SELECT max(id) FROM change_log WHERE noted_at < now() - make_interval(days => :days)"
)
_folded = LOG.c.id <= bindparam("upto")
_ranked = (
    select(
        LOG.c.id,
        func.row_number()
        .over(partition_by=(LOG.c.record_kind, LOG.c.record_id), order_by=LOG.c.id.desc())
        .label("newer"),
    )
    .where(_folded)
    .subquery("ranked")
)
_SUPERSEDED = delete(LOG).where(LOG.c.id.in_(select(_ranked.c.id).where(_ranked.c.newer > 1)))
# Compared as text, as the feed's reader compares them: a guarantee's id is a UUID.
_GONE = [
    delete(LOG).where(
        _folded,
        LOG.c.record_kind == kind,
        ~exists().where(cast(records.c.id, Text) == LOG.c.record_id),
    )
    for kind, records in RECORD_TABLES.items()
]
_FOLD = (
    update(LOG)
    .where(
        _folded,
        or_(
            LOG.c.operation != "insert",
            LOG.c.deactivated,
            LOG.c.personal,
            LOG.c.old_province.is_not(None),
            LOG.c.cooperative_old_province.is_not(None),
        ),
    )
    .values(
        operation="insert",
        deactivated=False,
        personal=False,
        old_province=None,
        old_regency=None,
        old_district=None,
        # A creation reaches every reader of the record, whoever sees its cooperative.
        **dict.fromkeys(COOPERATIVE_PLACE_COLUMNS),
    )
)
_KEPT = text("SELECT count(*) FROM change_log WHERE id <= :upto")
_MOVE_HORIZON = text("UPDATE change_log_horizon SET horizon = :upto, compacted_at = now()")


class CompactionRunning(Exception):
    """Another transaction holds the horizon: a compaction under way. Waiting for it would only
    find its work done (or ran into the command's statement timeout, a traceback)."""


@dataclass(frozen=True, slots=True)
class Compaction:
    horizon: int
    """The newest entry folded: cursors short of it are refused from now on."""
    removed: int
    kept: int
    """Entries up to the horizon left, one creation per record."""


async def compact(connection: AsyncConnection, older_than_days: int) -> Compaction | None:
    """Fold every entry up to the newest one noted more than `older_than_days` ago, in the
    caller's transaction; None when none is older than the horizon already is,
    CompactionRunning while another transaction compacts. The cut-off is the database's clock,
    which noted each entry."""
    # The whole log, once: finding the cut-off alone reads every entry (noted_at has no index).
    await connection.execute(text("SET LOCAL statement_timeout = 0"))
    try:
        horizon = (await connection.execute(_LOCKED_HORIZON)).scalar_one()
    except DBAPIError as error:
        if is_lock_timeout(error):  # NOWAIT's refusal, 55P03
            raise CompactionRunning from None
        raise
    upto = (await connection.execute(_UP_TO, {"days": older_than_days})).scalar_one()
    if upto is None or upto <= horizon:
        return None
    removed = (await connection.execute(_SUPERSEDED, {"upto": upto})).rowcount
    for gone in _GONE:
        removed += (await connection.execute(gone, {"upto": upto})).rowcount
    await connection.execute(_FOLD, {"upto": upto})
    kept = (await connection.execute(_KEPT, {"upto": upto})).scalar_one()
    await connection.execute(_MOVE_HORIZON, {"upto": upto})
    return Compaction(upto, removed, kept)
