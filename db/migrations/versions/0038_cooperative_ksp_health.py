"""A cooperative's savings-and-loan health rating, with the book year it assesses.

R11 fails a savings and loan rated below what the rule set accepts, and sends one whose rating
is unknown to review; but the register had nowhere to keep the rating, so every active KSP went
to review and an unhealthy one never failed. `ksp_health` holds the rating in the categories the
dinas use (sehat, cukup_sehat, kurang_sehat, tidak_sehat: domain/ruleset.py KSP_HEALTH), and
`ksp_health_book_year` the closed book year whose accounts it assessed, since R11 counts only a
rating for the book year whose RAT is due, or later. Both or neither: a rating without its year
cannot be weighed. Existing cooperatives have none, and go to review as before.

Revision ID: 0038
Revises: 0037
"""

import sqlalchemy as sa
from alembic import op

revision = "0038"
down_revision = "0037"
branch_labels = None
depends_on = None

KSP_HEALTH = ("sehat", "cukup_sehat", "kurang_sehat", "tidak_sehat")
"""As domain/ruleset.py declares them today: a migration does not follow later edits."""


def upgrade() -> None:
    op.add_column("cooperatives", sa.Column("ksp_health", sa.String(length=12), nullable=True))
    op.add_column("cooperatives", sa.Column("ksp_health_book_year", sa.SmallInteger(), nullable=True))
    allowed = ", ".join(f"'{value}'" for value in KSP_HEALTH)
    op.create_check_constraint(
        op.f("ck_cooperatives_ksp_health"), "cooperatives", f"ksp_health IN ({allowed})"
    )
    op.create_check_constraint(
        op.f("ck_cooperatives_ksp_health_book_year"),
        "cooperatives",
        "(ksp_health IS NULL) = (ksp_health_book_year IS NULL)",
    )


def downgrade() -> None:
    op.drop_constraint(op.f("ck_cooperatives_ksp_health_book_year"), "cooperatives", type_="check")
    op.drop_constraint(op.f("ck_cooperatives_ksp_health"), "cooperatives", type_="check")
    op.drop_column("cooperatives", "ksp_health_book_year")
    op.drop_column("cooperatives", "ksp_health")
