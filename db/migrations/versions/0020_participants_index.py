"""A programme's participations in id order, from an index.

A programme's participants are its first participations the caller may read, in id order
(db/queries/programmes.py). With only the unique constraint's index, led by the programme but
not ordered by id, PostgreSQL walked the whole table in id order for each programme, filtering:
on 333,000 participations, a programme with none cost a full scan. With this index it reads the
programme's own rows, already in order, and stops at the page's end.

Revision ID: 0020
Revises: 0019
"""

from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_participations_programme_id_id", "participations", ["programme_id", "id"]
    )


def downgrade() -> None:
    op.drop_index("ix_participations_programme_id_id", table_name="participations")
