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

An instance of the previous release, still serving during a rolling upgrade (README,
"Upgrading": migrate first, then replace the instances one at a time), stores its decisions
without the column, and every later read trusts the column: its decisions would name no one,
for good. A trigger fills in the subject of a decision about an MSME stored without one from
the business's owner at the insert, the owner that instance's check read. This release stores
NULL only when the business had no owner at the check, and the trigger finds none either (or
the one put in since, whom the decision is then about). Like 0023's triggers it runs as the
caller (the service, which reads `msme_owners` already) with a fixed `search_path` (`pg_temp`
last) and its table schema-qualified, and it is the owner's: the service can neither drop,
disable nor replace it. It fires only on a row without a subject (its WHEN): a check of this
release that read an owner pays nothing for it.

The column is the service's to insert, never to update (db/roles.py grants it INSERT alone), so
a decision's subject is fixed once stored. The review-once trigger on the table (0023's)
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
SUBJECT_FILLED = """
CREATE FUNCTION eligibility_decision_subject() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    SELECT nik INTO NEW.subject_nik FROM public.msme_owners WHERE msme_id = NEW.msme_id;
    RETURN NEW;
END $$;
"""


def upgrade() -> None:
    op.add_column("eligibility_decisions", sa.Column("subject_nik", sa.String(16), nullable=True))
    op.execute(BACKFILL)
    op.execute(
        "ALTER TABLE eligibility_decisions ADD CONSTRAINT"
        " ck_eligibility_decisions_subject_is_a_person"
        " CHECK (subject_nik IS NULL OR msme_id IS NOT NULL)"
    )
    op.execute(SUBJECT_FILLED)
    op.execute(
        "CREATE TRIGGER eligibility_decisions_subject BEFORE INSERT ON eligibility_decisions"
        " FOR EACH ROW WHEN (NEW.subject_nik IS NULL AND NEW.msme_id IS NOT NULL)"
        " EXECUTE FUNCTION eligibility_decision_subject()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER eligibility_decisions_subject ON eligibility_decisions")
    op.execute("DROP FUNCTION eligibility_decision_subject()")
    op.drop_column("eligibility_decisions", "subject_nik")
