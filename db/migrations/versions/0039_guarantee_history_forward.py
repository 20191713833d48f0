"""A guarantee's status history runs forward in time, and through the allowed moves alone.

`changeGuaranteeStatus` dated a change on any day from the guarantee's start to today, whatever
the changes before it said: a guarantee started on 5 December was claimed effective the 20th,
then active again effective the 10th, then paid off effective the 6th, a history that has it
repaid before it was claimed. The API now refuses a change dated before the latest one
(domain/guarantees.py `check_effective`), and the trigger that keeps a status with its history
(0023) now holds the same for whoever writes the table: a change takes effect neither before the
guarantee started nor before a change recorded before it.

And whoever held the service's credentials could undo a final status: set a defaulted guarantee
`active` with a row of history `defaulted` -> `active`, which the trigger took, since the row
started where the one before ended; the guarantor's R13 for the business was lifted. The
trigger now refuses a change that is not one of the moves `changeGuaranteeStatus` allows
(domain/guarantees.py TRANSITIONS: a paid-off or defaulted guarantee is final), or a first
change to anything but `active`, the status a guarantee is recorded in. The moves are written
here as the domain declares them today, in `guarantee_status_may_follow`, which the trigger
asks; tests/test_decision_and_guarantee_guards.py holds it equal to TRANSITIONS, so a later
edit of either fails until a migration follows it.

Revision ID: 0039
Revises: 0038
"""

from alembic import op

revision = "0039"
down_revision = "0038"
branch_labels = None
depends_on = None

TRANSITIONS = {
    "active": ("claimed", "paid_off", "defaulted"),
    "claimed": ("active", "paid_off", "defaulted"),
    "paid_off": (),
    "defaulted": (),
}
"""As domain/guarantees.py declares them today: a migration does not follow later edits."""
RECORDED_AS = "active"
"""The status a guarantee is recorded in (db/models.py), its first change's `to_status`."""


def _one_of(moves: tuple[str, ...]) -> str:
    """`to_status` is one of `moves`: never, for a final status (SQL has no empty IN list)."""
    if not moves:
        return "false"
    return "to_status IN (" + ", ".join(f"'{new}'" for new in moves) + ")"


def _may_follow() -> str:
    """`guarantee_status_may_follow(from, to)`: whether `to` may follow `from`, a first change's
    NULL included. Plain SQL, run with its caller's rights: it reads nothing."""
    arms = "\n".join(
        f"        WHEN '{old}' THEN {_one_of(moves)}" for old, moves in TRANSITIONS.items()
    )
    return f"""
CREATE FUNCTION guarantee_status_may_follow(from_status text, to_status text) RETURNS boolean
LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp AS $$
    SELECT CASE from_status
{arms}
        ELSE from_status IS NULL AND to_status = '{RECORDED_AS}'
    END
$$;
"""


FORWARD = """
CREATE OR REPLACE FUNCTION guarantee_status_recorded() RETURNS trigger LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    guarantee uuid;
    latest text;
    current_status text;
    before_change text;
    earliest date;
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
        IF NOT public.guarantee_status_may_follow(NEW.from_status, NEW.to_status) THEN
            RAISE EXCEPTION 'guarantee %: no status change from % to %', guarantee,
                coalesce(NEW.from_status, 'nothing'), NEW.to_status
                USING ERRCODE = 'check_violation';
        END IF;
        -- greatest() passes over the NULL max() of a first change.
        SELECT greatest(g.starts_on, (SELECT max(c.effective_on)
            FROM public.guarantee_status_changes c
            WHERE c.guarantee_id = guarantee AND c.id < NEW.id)) INTO earliest
        FROM public.guarantees g WHERE g.id = guarantee;
        IF NEW.effective_on < earliest THEN
            RAISE EXCEPTION 'guarantee %: a status change effective % precedes %', guarantee,
                NEW.effective_on, earliest USING ERRCODE = 'check_violation';
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

AS_0023 = """
CREATE OR REPLACE FUNCTION guarantee_status_recorded() RETURNS trigger LANGUAGE plpgsql
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
"""The function as 0023 made it, restored by the downgrade."""


def upgrade() -> None:
    op.execute(_may_follow())
    op.execute(FORWARD)


def downgrade() -> None:
    op.execute(AS_0023)
    op.execute("DROP FUNCTION guarantee_status_may_follow(text, text)")
