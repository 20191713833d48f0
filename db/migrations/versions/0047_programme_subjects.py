"""Whom a programme takes in: MSMEs, cooperatives or both.

Nothing said so, and `addParticipation` put any business in any programme: an MSME producing
Minyak Makan Merah, which the ministry runs with palm-farmer cooperatives only, or a cooperative
receiving Bantuan Produktif UMKM, each then counted among the programme's participants. The new
column `subjects` is `msme`, `cooperative` or `both` (domain/programmes.py), held to them by a
CHECK. Every programme stored gets `both`, which refuses nothing it did not refuse before; the
reference loader, run by every `sinergi migrate`, then sets the shipped programmes' own from
`programmes.csv`. Participations already stored are left as they are.

Revision ID: 0047
Revises: 0046
"""

import sqlalchemy as sa
from alembic import op

revision = "0047"
down_revision = "0046"
branch_labels = None
depends_on = None

SUBJECTS = ("msme", "cooperative", "both")
"""As domain/programmes.py declares them today: a migration does not follow later edits."""


def upgrade() -> None:
    op.add_column(
        "programmes",
        sa.Column("subjects", sa.String(length=11), nullable=False, server_default="both"),
    )
    allowed = ", ".join(f"'{subjects}'" for subjects in SUBJECTS)
    op.create_check_constraint(
        op.f("ck_programmes_subjects"), "programmes", f"subjects IN ({allowed})"
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_programmes_subjects"), "programmes", type_="check")
    op.drop_column("programmes", "subjects")
