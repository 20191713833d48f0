"""The change feed can be compacted: when each entry was noted, and how far the log is compacted.

The log keeps every change ever made, the register's first creations included (migration 0014).
`sinergi feed compact` (db/queries/change_feed_compaction.py) folds the entries older than
a given age into one creation per record that still exists. A reader who starts from no cursor
still receives the whole register; a cursor older than the fold would pass over what the
folded entries said (a move out of its jurisdiction, a deletion), so the feed refuses it, and
its copy starts again. `change_log_horizon` holds the newest entry folded (0: none).

`noted_at` is when the entry's transaction began (an entry is numbered at commit, so a long
transaction's entries can be noted before entries numbered ahead of them); entries logged
before this migration take the time it ran.

A downgrade refuses once the log is compacted (cursors short of the fold would be accepted
again) or while it holds an entry (its time could not be rebuilt).

Revision ID: 0022
Revises: 0021
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # now() is evaluated once here for the rows already logged: no rewrite of the log.
    op.execute("ALTER TABLE change_log ADD COLUMN noted_at timestamptz NOT NULL DEFAULT now()")
    op.execute(
        "CREATE TABLE change_log_horizon ("
        " one boolean NOT NULL DEFAULT true CONSTRAINT pk_change_log_horizon PRIMARY KEY"
        "  CONSTRAINT ck_change_log_horizon_one_row CHECK (one),"
        " horizon bigint NOT NULL,"
        " compacted_at timestamptz)"
    )
    op.execute("INSERT INTO change_log_horizon (horizon) VALUES (0)")
    op.execute("REVOKE ALL ON change_log_horizon FROM PUBLIC")


def downgrade() -> None:
    # Neither the fold nor the entries' times could be rebuilt: forgetting the fold would let
    # cursors short of it through again, passing over what the folded entries said; and an
    # upgrade would stamp every entry with its own time, so compaction could not tell their age.
    op.execute(
        "DO $$ DECLARE folded bigint; logged bigint; BEGIN"
        " SELECT horizon INTO folded FROM change_log_horizon;"
        " IF folded > 0 THEN RAISE EXCEPTION 'the change feed is compacted through entry %; a"
        " downgrade forgets the fold, and cursors short of it would be accepted again, silently"
        " passing over what the folded entries said: cannot downgrade', folded; END IF;"
        " SELECT count(*) INTO logged FROM change_log;"
        " IF logged > 0 THEN RAISE EXCEPTION 'the change feed holds % entries noted at their own"
        " times; a downgrade drops the times and an upgrade stamps every entry with its own, so"
        " `sinergi feed compact --older-than` could not tell their age: cannot downgrade',"
        " logged; END IF; END $$"
    )
    op.execute("DROP TABLE change_log_horizon")
    op.execute("ALTER TABLE change_log DROP COLUMN noted_at")
