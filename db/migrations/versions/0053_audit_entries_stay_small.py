"""A read of the audit trail names the positions of the entries it returned, found by an index.

A read of the trail (`auditEntries`) named as its data subjects every NIK of every entry it
returned. A custodian's dashboard polling the newest entries got back its own previous read
among them, and copied its subjects into the next: after 30 rounds of an agency reading 200
owners and the custodian reading 5 entries, each of the custodian's entries named 6,000 NIKs,
and they grew on without end. A read's entry now names the positions of the entries it returned
(`positions`, in the entry: hashed, sealed and signed with it) and the person it asked about;
`personalDataAccess(nik)` finds the reads that handed out a person's NIK by following those
positions to the entries naming them (db/queries/audit.py). This index finds, for an entry,
the reads that returned it; it holds only the entries of such reads.

Revision ID: 0053
Revises: 0051
"""

from alembic import op

revision = "0053"
down_revision = "0051"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "CREATE INDEX ix_audit_log_positions ON audit_log"
        " USING gin ((entry -> 'positions') jsonb_path_ops) WHERE entry ? 'positions'"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_audit_log_positions")
