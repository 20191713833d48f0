"""Stored decisions and guarantee statuses change only as the service's use cases change them.

The service role held table-wide UPDATE on `eligibility_decisions` and `guarantees`, so whoever
held its credentials could rewrite a decision's verdict, facts, results and check date together
(its replay still `sameAsStored`), or move a guarantee into or out of default (deciding R13 for
the business) without a line in its status history. Its privileges are now per column
(db/roles.py, granted after every upgrade): a review's columns of a decision, a guarantee's
status. Two triggers, owned by the owner and so beyond the service's reach, hold what a column
grant cannot:

- Review once. A decision is reviewed only when its verdict is NEEDS_REVIEW and it has no review
  yet, by its own client, with a verdict, reviewer and reason, as `resolveEligibilityReview`
  already requires in its WHERE clause (db/queries/eligibility.py): the database now agrees.
  The review's time is the database's clock, as an audit entry's is, so it cannot be backdated.
  It watches the review's columns, the only ones the service may update: the owner's own
  repairs of other columns (a migration's backfill) are not reviews.
- A status moves with its history. At commit, every guarantee whose status was set or that was
  recorded, and every guarantee a status change was appended for, must have its status equal to
  the newest change's `to_status`, and each change must start (`from_status`) where the one
  before it ended. A constraint trigger DEFERRABLE INITIALLY DEFERRED, because the code writes
  the status before its history row (db/queries/guarantees.py: `change_status`, and
  `insert_guarantee` writes the guarantee before its first change), so a BEFORE UPDATE check
  would find no row yet. It compares state, not `xmin` with the current transaction id: a row
  written under a savepoint carries the subtransaction's id, and checking the appended changes
  too means a change written in one transaction cannot license a status set, silently, in a
  later one. Deferring the check to commit is all the service can do to it (SET CONSTRAINTS
  ... IMMEDIATE only checks sooner); switching it off takes the owner.

Revision ID: 0023
Revises: 0022
"""

from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

REVIEW_ONCE = """
CREATE FUNCTION eligibility_decision_review_once() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF OLD.verdict <> 'NEEDS_REVIEW' OR OLD.reviewed_verdict IS NOT NULL THEN
        RAISE EXCEPTION 'decision %: only an unreviewed NEEDS_REVIEW decision is reviewed',
            OLD.id USING ERRCODE = 'check_violation';
    END IF;
    IF NEW.reviewed_verdict IS NULL OR NEW.reviewer IS NULL OR NEW.review_reason IS NULL
        OR NEW.reviewed_by_client IS DISTINCT FROM OLD.client_id THEN
        RAISE EXCEPTION 'decision %: a review has a verdict, reviewer, reason and its client',
            OLD.id USING ERRCODE = 'check_violation';
    END IF;
    NEW.reviewed_at := clock_timestamp();
    RETURN NEW;
END $$;
"""

STATUS_RECORDED = """
CREATE FUNCTION guarantee_status_recorded() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    guarantee uuid;
    latest text;
    current_status text;
    before_change text;
BEGIN
    IF TG_TABLE_NAME = 'guarantees' THEN
        guarantee := NEW.id;
    ELSE
        guarantee := NEW.guarantee_id;
        SELECT to_status INTO before_change FROM public.guarantee_status_changes
        WHERE guarantee_id = guarantee AND id < NEW.id ORDER BY id DESC LIMIT 1;
        IF NEW.from_status IS DISTINCT FROM before_change THEN
            RAISE EXCEPTION 'guarantee %: a status change from % follows one to %', guarantee,
                coalesce(NEW.from_status, 'nothing'), coalesce(before_change, 'nothing')
                USING ERRCODE = 'check_violation';
        END IF;
    END IF;
    SELECT status INTO current_status FROM public.guarantees WHERE id = guarantee;
    SELECT to_status INTO latest FROM public.guarantee_status_changes
    WHERE guarantee_id = guarantee ORDER BY id DESC LIMIT 1;
    IF latest IS DISTINCT FROM current_status THEN
        RAISE EXCEPTION 'guarantee %: status % but its history ends at %', guarantee,
            current_status, coalesce(latest, 'nothing') USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.execute(REVIEW_ONCE)
    op.execute(
        "CREATE TRIGGER eligibility_decisions_review_once BEFORE UPDATE OF reviewed_verdict,"
        " reviewer, review_reason, reviewed_by_client ON eligibility_decisions"
        " FOR EACH ROW EXECUTE FUNCTION eligibility_decision_review_once()"
    )
    op.execute(STATUS_RECORDED)
    op.execute(
        "CREATE CONSTRAINT TRIGGER guarantees_status_recorded AFTER INSERT OR UPDATE OF status"
        " ON guarantees DEFERRABLE INITIALLY DEFERRED"
        " FOR EACH ROW EXECUTE FUNCTION guarantee_status_recorded()"
    )
    op.execute(
        "CREATE CONSTRAINT TRIGGER guarantee_status_changes_recorded AFTER INSERT"
        " ON guarantee_status_changes DEFERRABLE INITIALLY DEFERRED"
        " FOR EACH ROW EXECUTE FUNCTION guarantee_status_recorded()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER guarantee_status_changes_recorded ON guarantee_status_changes")
    op.execute("DROP TRIGGER guarantees_status_recorded ON guarantees")
    op.execute("DROP FUNCTION guarantee_status_recorded()")
    op.execute("DROP TRIGGER eligibility_decisions_review_once ON eligibility_decisions")
    op.execute("DROP FUNCTION eligibility_decision_review_once()")
