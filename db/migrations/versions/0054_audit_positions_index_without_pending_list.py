"""The index of reads' positions (0053) takes each read at once, not in a pending list.

`personalDataAccess(nik)` finds the reads of the trail that returned an entry naming the person
with one lookup in `ix_audit_log_positions` per such entry (db/queries/audit.py `_handed_out`).
A GIN index keeps new entries in a pending list until a vacuum merges them (`fastupdate`, on by
default), and every lookup reads that whole list: with 2,000 reads waiting there, each of 98,000
lookups took 0.28 ms, and a person named in 98,000 entries waited 28 s (the statement timeout,
5 s, struck at some 17,000). Merged, a lookup takes 8 µs: 0.8 s for those 98,000, whatever has
been written since the last vacuum, once each read is merged into the index as it is inserted.
A read's entry names at most a page of positions, so inserting it costs a few more lookups.

Measured against it, on 100,000 entries and those 2,000 reads: an index of the positions as a
`bigint[]` (GIN, array_ops), asked `&& ARRAY(SELECT seq FROM named)` once, took 24 s for the
98,000 (a GIN scan checks each candidate against every key asked); scanning every read and
hash-joining its positions to the named entries took 0.6 s for them but 0.12 s for a person
named once, growing with every read ever made.

Revision ID: 0054
Revises: 0053
"""

from alembic import op

revision = "0054"
down_revision = "0053"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER INDEX ix_audit_log_positions SET (fastupdate = off)")
    # Turning it off leaves what the list holds there, until a vacuum: merged now.
    op.execute("SELECT gin_clean_pending_list('ix_audit_log_positions')")


def downgrade() -> None:
    op.execute("ALTER INDEX ix_audit_log_positions RESET (fastupdate)")
