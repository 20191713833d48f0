"""Change-feed cursors are sealed: the ones handed out in clear before are taken up to where the
log reached when this migration ran, and no further.

A feed's cursor was its position in `change_log` in clear (base64 of "msme-feed:6454:0"), and
the log numbers every change in the country: a regency's or a guarantor's cursor, read again
after a quiet page, told it how much everyone else had changed, owners' personal data and other
guarantors' business included. From this release the feed seals its cursors
(domain/cursor_seal.py). A copy kept with a cursor in clear goes on from it, so no client has
to fetch its copy again: its position is its holder's already. Every such cursor the feed
handed out lies at or before how far the log had reached when this migration ran (its newest
entry, or what compaction had folded if further), `clear_cursors_until`; one past it was made
up, and taking it would tell its maker where the feed stands now, so the feed refuses it as it
refuses a forged cursor. (One handed out past it by an instance still running the previous
release, during a rolling upgrade, is refused too: its copy starts again, as after a
compaction.)

A database made after this migration holds 0 here: no cursor in clear is taken.

Revision ID: 0029
Revises: 0028
"""

from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE change_log_horizon ADD COLUMN clear_cursors_until bigint NOT NULL DEFAULT 0"
    )
    op.execute(
        "UPDATE change_log_horizon SET clear_cursors_until ="
        " greatest(horizon, (SELECT coalesce(max(id), 0) FROM change_log))"
    )


def downgrade() -> None:
    # The previous release hands out and takes cursors in clear again, whatever their position.
    op.execute("ALTER TABLE change_log_horizon DROP COLUMN clear_cursors_until")
