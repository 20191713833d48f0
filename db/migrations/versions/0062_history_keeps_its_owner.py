"""A history entry keeps the NIKs of the owners whose figures it holds: a read names them.

An MSME's figures (capital, annual sales, scale) are its owner's finances, so a read of them
names the owner as a data subject of its audit entry (README, "The audit trail"). The record's
history (`changes`) and its scale history looked the owner up at the read, so once the province
replaced the owner, a reader of figures recorded under the earlier one was audited as having
read the new one's, and `personalDataAccess` did not list it for the person whose figures it
got; once the owner was erased, such a read named no one. As a decision keeps its subject
(0049), each `record_changes` row of an MSME and each `msme_scale_history` row now keeps
`owner_niks`: the owners whose figures it holds, and a read names those of the rows it returns.

A scale entry holds one set of figures, the record's after its write: the owner on record then
(none: below). A change holds the figures before and after its write: the owner on record then,
and, when the write replaced or erased the owner, the one before too, whose figures it
overwrote (the write passes both: `updateMsme` read under its lock, an import from the row).
Rows written without the column (by a write that left the owner alone, 0016's trigger writing a
batch's first entry out, or an instance of the previous release during an upgrade) take the
owner on record at their insert, from a trigger of the owner's as 0049's (runs as the caller,
fixed `search_path`, `pg_temp` last, fires only on a row without it). Where there is none it
leaves NULL, not an empty array: an instance of the previous release still serving during an
upgrade (README, "Upgrading") imports a new record's history entry before its owner, and an
empty array kept then would name no one for that owner's figures forever, where NULL names the
owner on record at the read, as before this revision.

Rows written before this revision keep NULL, and a read names the owner on record at the read
for them, as before: the owner at their write was not kept, so no backfill could be told from a
guess. So do an imported record's first entries read through the batches' views (0015, 0016),
which have no row until the record changes. An empty array is written only by the service
itself where it knows the business had no owner (an import, whose statements pass the column):
it names no one.

The NIKs are personal data outside `msme_owners`, kept when the owner is replaced or erased
there, as a decision's subject is: the history still shows the figures, and a read of them names
the person they are about. No GraphQL field reads the column, and a figure release copies the
scale history by a list of columns that does not name it (0055).

Revision ID: 0062
Revises: 0061
"""

from alembic import op

from db.migrations.earlier import migration

revision = "0062"
down_revision = "0061"
branch_labels = None
depends_on = None

OWNERS = "varchar(16)[]"

M0055 = migration("0055_scale_history_turnover_year.py")
_REGISTERED = migration("0037_registered_scale.py")
_COLUMNS = migration("0015_import_batches.py").RECORD_COLUMNS
_AT = _COLUMNS.index("scale") + 1
RECORD_HISTORY = _REGISTERED._record_history(
    (*_COLUMNS[:_AT], "declared_scale", *_COLUMNS[_AT:])
)
"""0037's `record_history`, as it stands before this revision."""

VIEWS = {
    "record_history": (
        RECORD_HISTORY,
        M0055._replaced(
            RECORD_HISTORY,
            ("personal_fields\n  FROM record_changes", "personal_fields, owner_niks\n  FROM record_changes"),
            ("'{}'::text[]\n  FROM msmes m", f"'{{}}'::text[], NULL::{OWNERS}\n  FROM msmes m"),
        ),
    ),
    "scale_history": (
        M0055.VIEW,
        M0055._replaced(
            M0055.VIEW,
            ("turnover_year\n  FROM msme_scale_history", "turnover_year, owner_niks\n  FROM msme_scale_history"),
            (" AS turnover_year\n", f" AS turnover_year, NULL::{OWNERS} AS owner_niks\n"),
        ),
    ),
}
"""Each view (before, after): a batch's entry has no owners kept, the owner at the read's."""

OWNERS_KEPT = {
    "record_changes": "NEW.record_id",
    "msme_scale_history": "NEW.msme_id",
}
"""Each table with `owner_niks`, by the expression of its row's MSME."""

FILLED = """
CREATE FUNCTION {table}_owners() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    NEW.owner_niks := nullif(ARRAY(SELECT nik FROM public.msme_owners WHERE msme_id = {msme}),
                             '{{}}');
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    for table, msme in OWNERS_KEPT.items():
        op.execute(f"ALTER TABLE {table} ADD COLUMN owner_niks {OWNERS}")
        op.execute(FILLED.format(table=table, msme=msme))
    op.execute(
        "CREATE TRIGGER record_changes_owners BEFORE INSERT ON record_changes FOR EACH ROW"
        " WHEN (NEW.owner_niks IS NULL AND NEW.record_kind = 'msme')"
        " EXECUTE FUNCTION record_changes_owners()"
    )
    op.execute(
        "CREATE TRIGGER msme_scale_history_owners BEFORE INSERT ON msme_scale_history"
        " FOR EACH ROW WHEN (NEW.owner_niks IS NULL) EXECUTE FUNCTION msme_scale_history_owners()"
    )
    for _, after in VIEWS.values():
        op.execute(after)


def downgrade() -> None:
    for view, (before, _) in VIEWS.items():
        op.execute(M0055._restored(view, before))
    for table in OWNERS_KEPT:
        op.execute(f"DROP TRIGGER {table}_owners ON {table}")
        op.execute(f"DROP FUNCTION {table}_owners()")
        op.execute(f"ALTER TABLE {table} DROP COLUMN owner_niks")
