"""A programme's kind is one of a closed vocabulary.

R12 fails a check while the business takes part in a programme of kind `subsidised_credit`
(db/queries/eligibility.py), but the kind was free text: a KUR programme loaded as "kur" or
"Subsidised_Credit" was one R12 never counted, so a business taking subsidised credit passed
it, where missing data is never a pass (docs/domain.md). The kind is now one of `production`,
`supply`, `credit_guarantee`, `subsidised_credit`, `certification`, `grant`, `training` and
`institution_building` (domain/programmes.py): the reference loader refuses any other, and a
CHECK constraint holds the column to them.

A programme whose kind is another is not guessed at (is "kur" subsidised credit, "hibah" a
grant?): before changing anything, the migration stops, naming every such programme with its
kind, and the owner sets each to what it means and migrates again, e.g.

    UPDATE programmes SET kind = 'subsidised_credit' WHERE id = 'PR-KUR';

Revision ID: 0045
Revises: 0044
"""

import sqlalchemy as sa
from alembic import op

revision = "0045"
down_revision = "0044"
branch_labels = None
depends_on = None

KINDS = (
    "production",
    "supply",
    "credit_guarantee",
    "subsidised_credit",
    "certification",
    "grant",
    "training",
    "institution_building",
)
"""As domain/programmes.py declares them today: a migration does not follow later edits."""
SHOWN = 50
"""How many offending programmes the refusal lists."""
_ALLOWED = ", ".join(f"'{kind}'" for kind in KINDS)
UNKNOWN = f"SELECT id, kind FROM programmes WHERE kind NOT IN ({_ALLOWED}) ORDER BY id"


def _unknown(connection: sa.Connection) -> str | None:
    """The refusal, listing every programme of a kind outside the vocabulary."""
    rows = connection.execute(sa.text(UNKNOWN)).all()
    if not rows:
        return None
    lines = [f"programme {row.id}: {row.kind!r}" for row in rows]
    shown = "".join(f"\n  {line}" for line in lines[:SHOWN])
    if len(lines) > SHOWN:
        shown += f"\n  … and {len(lines) - SHOWN} more"
    return (
        f"migration 0045 changed nothing: {len(rows)} programme(s) hold a kind that is none of "
        f"{', '.join(KINDS)}; set each to the kind it means "
        f"(UPDATE programmes SET kind = 'subsidised_credit' WHERE id = …):{shown}"
        "\nthen migrate again"
    )


def upgrade() -> None:
    refusal = _unknown(op.get_bind())
    if refusal is not None:
        raise RuntimeError(refusal)
    op.create_check_constraint(op.f("ck_programmes_kind"), "programmes", f"kind IN ({_ALLOWED})")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_programmes_kind"), "programmes", type_="check")
