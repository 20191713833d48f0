"""Drop two indexes that a unique constraint's index already serves.

`msme_scale_history (msme_id)` and `participations (programme_id)` are each the first column of
their table's unique constraint, whose index answers the same lookups; the second index only
cost every insert (a bulk import writes one scale-history row per record) and disk.

Revision ID: 0009
Revises: 0008
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_msme_scale_history_msme_id", table_name="msme_scale_history")
    op.drop_index("ix_participations_programme_id", table_name="participations")


def downgrade() -> None:
    op.create_index("ix_participations_programme_id", "participations", ["programme_id"])
    op.create_index("ix_msme_scale_history_msme_id", "msme_scale_history", ["msme_id"])
