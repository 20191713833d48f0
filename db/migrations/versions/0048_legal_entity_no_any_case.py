"""A cooperative's legal-entity number is registered once, whatever its case.

A Kemenkumham number has one spelling (migration 0034), but an older dinas number
(`518/BH/XIV/1999`) follows no common scheme and is kept as typed, and the UNIQUE constraint
compared it exactly: `518/BH/XIV/1999` and `518/bh/xiv/1999` registered one cooperative twice,
counted twice in every figure. A unique index on lower(legal_entity_no) now holds a number once
in any case (db/models.py `LEGAL_ENTITY_NO_FOLDED`); the number is still stored and shown as
typed. A Kemenkumham number is upper-case in its one spelling, so the index changes nothing for
it. (domain/identifiers.py also refuses a new older-style number with a character outside
printable ASCII, such as a Greek capital Iota standing for an I, which no case folding joins to
its look-alike; a number already stored outside ASCII is left as it is, and kept by updates:
README lists them with one query, for the owner to correct any that is a look-alike.)

Cooperatives already stored whose numbers differ only by case are not merged: which record is
the cooperative, and what becomes of the other's members, participations, guarantees and
history, is the owner's decision. Before changing anything the migration stops, naming each
such number with the cooperatives that hold it and their spellings, and the owner keeps one
record of each (moving what refers to the others to it and deleting them, or correcting a
number that was mistyped) and migrates again.

Revision ID: 0048
Revises: 0047
"""

import sqlalchemy as sa
from alembic import op

revision = "0048"
down_revision = "0047"
branch_labels = None
depends_on = None

SHOWN = 50
"""How many duplicated numbers the refusal lists."""
DUPLICATES = """
SELECT array_agg(id ORDER BY id) AS ids, array_agg(legal_entity_no ORDER BY id) AS spellings
  FROM cooperatives GROUP BY lower(legal_entity_no) HAVING count(*) > 1 ORDER BY min(id)
"""


def _duplicates(connection: sa.Connection) -> str | None:
    """The refusal, listing every number more than one cooperative holds in different cases."""
    rows = connection.execute(sa.text(DUPLICATES)).all()
    if not rows:
        return None
    lines = [
        ", ".join(
            f"cooperative {id_} {number!r}"
            for id_, number in zip(row.ids, row.spellings, strict=True)
        )
        for row in rows
    ]
    shown = "".join(f"\n  {line}" for line in lines[:SHOWN])
    if len(lines) > SHOWN:
        shown += f"\n  … and {len(lines) - SHOWN} more"
    return (
        f"migration 0048 changed nothing: {len(rows)} legal-entity number(s) are held by more "
        "than one cooperative, spelled in different cases; keep one cooperative of each (move "
        "what refers to the others to it and DELETE FROM cooperatives WHERE id IN (…), or "
        f"correct a mistyped number):{shown}\nthen migrate again"
    )


def upgrade() -> None:
    refusal = _duplicates(op.get_bind())
    if refusal is not None:
        raise RuntimeError(refusal)
    op.execute(
        "CREATE UNIQUE INDEX uq_cooperatives_legal_entity_no_folded ON cooperatives"
        " (lower(legal_entity_no))"
    )


def downgrade() -> None:
    """Numbers differing only by case stay apart under the exact key, so nothing blocks it."""
    op.drop_index("uq_cooperatives_legal_entity_no_folded", table_name="cooperatives")
