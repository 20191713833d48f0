"""A business holds a role in a programme once, whatever its case.

UNIQUE NULLS NOT DISTINCT (programme_id, msme_id, cooperative_id, role) (migration 0026) compared
the role exactly, as the service did before it looked for a duplicate: "supplier" and then
"Supplier" made two participations of one business in one role, which the contract says is a
CONFLICT. The key is now a unique index on lower(role), and the service compares lower(role)
too (db/models.py `PARTICIPATION_ROLE`). The role is stored as given, not respelled: a client
reads back what it wrote, and a role's case says nothing a rule reads.

Participations already stored whose roles differ only by case are not merged or dropped: before
changing anything the migration stops, naming each programme, business and the participations
with their spellings, and the owner keeps one of each (its history stays in `record_changes`)
and migrates again, e.g.

    DELETE FROM participations WHERE id IN (18);

Revision ID: 0042
Revises: 0041
"""

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0041"
branch_labels = None
depends_on = None

SHOWN = 50
"""How many duplicates the refusal lists."""
DUPLICATES = """
SELECT programme_id, msme_id, cooperative_id,
       array_agg(id ORDER BY id) AS ids, array_agg(role ORDER BY id) AS roles
  FROM participations GROUP BY programme_id, msme_id, cooperative_id, lower(role)
HAVING count(*) > 1 ORDER BY min(id)
"""
COLUMNS = "programme_id, msme_id, cooperative_id"


def _duplicates(connection: sa.Connection) -> str | None:
    """The refusal, listing every business holding a role twice in different cases."""
    rows = connection.execute(sa.text(DUPLICATES)).all()
    if not rows:
        return None
    lines = [
        f"programme {row.programme_id}, "
        + (f"msme {row.msme_id}" if row.msme_id else f"cooperative {row.cooperative_id}")
        + ": "
        + ", ".join(
            f"participation {id_} {role!r}" for id_, role in zip(row.ids, row.roles, strict=True)
        )
        for row in rows
    ]
    shown = "".join(f"\n  {line}" for line in lines[:SHOWN])
    if len(lines) > SHOWN:
        shown += f"\n  … and {len(lines) - SHOWN} more"
    return (
        f"migration 0042 changed nothing: {len(rows)} business(es) hold a role in a programme "
        "more than once, spelled in different cases; keep one participation of each "
        f"(DELETE FROM participations WHERE id IN (…)):{shown}\nthen migrate again"
    )


def upgrade() -> None:
    refusal = _duplicates(op.get_bind())
    if refusal is not None:
        raise RuntimeError(refusal)
    op.drop_constraint("uq_participations_programme_id", "participations", type_="unique")
    op.execute(
        "CREATE UNIQUE INDEX uq_participations_role ON participations"
        f" ({COLUMNS}, lower(role)) NULLS NOT DISTINCT"
    )


def downgrade() -> None:
    """Roles differing only by case stay apart under the exact key, so nothing blocks it."""
    op.drop_index("uq_participations_role", table_name="participations")
    op.execute(
        "ALTER TABLE participations ADD CONSTRAINT uq_participations_programme_id"
        f" UNIQUE NULLS NOT DISTINCT ({COLUMNS}, role)"
    )
