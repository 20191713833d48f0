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
    op.execute("DROP TABLE change_log_horizon")
    op.execute("ALTER TABLE change_log DROP COLUMN noted_at")
