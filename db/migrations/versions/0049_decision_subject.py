"""A decision keeps the NIK of the person it was about: its business's owner on the day of the check.

A decision about an MSME is data about its owner, a natural person, whose NIK names them as the
data subject of the audit entries of the decision and of a guarantee resting on it (README, "The
audit trail"). The NIK was looked up in the register at each read, so once the province replaced
the owner, reading the decision back, recording or changing a guarantee on it, and the
guarantee's entries in `guaranteeChanges` named the new owner, whom the decision is not about,
and `personalDataAccess` listed the guarantor for them and not for the person it was about; once
the owner was erased, they named no one. The check now stores the NIK it read
(`subject_nik`), every later entry names it, and a guarantee's is its decision's.

Decisions already stored are backfilled from their business's owner on the register today: the
owner at the check was not kept, so a decision whose business changed owner since is credited to
the current one, as every entry before this migration was, and one whose owner was erased names
no one. A cooperative's decision names no one (`subject_is_a_person`).

The column is the service's to insert, never to update (db/roles.py grants it INSERT alone), so
a decision's subject is fixed once stored. The one trigger on the table (0023's review-once)
watches the review's columns alone, so the backfill is no review and it needs no change. Who may
read the NIK does not widen: the table is read by the service and the owner alone, who read
`msme_owners` already, and no GraphQL field reads the column.

Revision ID: 0049
Revises: 0048
"""

import sqlalchemy as sa
from alembic import op

revision = "0049"
down_revision = "0048"
branch_labels = None
depends_on = None

BACKFILL = """
UPDATE eligibility_decisions AS d SET subject_nik = o.nik
  FROM msme_owners AS o WHERE o.msme_id = d.msme_id
"""


def upgrade() -> None:
    op.add_column("eligibility_decisions", sa.Column("subject_nik", sa.String(16), nullable=True))
    op.execute(BACKFILL)
    op.execute(
        "ALTER TABLE eligibility_decisions ADD CONSTRAINT"
        " ck_eligibility_decisions_subject_is_a_person"
        " CHECK (subject_nik IS NULL OR msme_id IS NOT NULL)"
    )


def downgrade() -> None:
    op.drop_column("eligibility_decisions", "subject_nik")
