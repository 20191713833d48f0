"""A Kemenkumham legal-entity number has one spelling, so its UNIQUE constraint holds per number.

`cooperatives.legal_entity_no` was unique as text, while one number reaches the register in
several spellings: the register prints the serial with seven digits (`AHU-0000032`), a
cooperative's letterhead with six (`AHU-000032`). The API upper-cased and collapsed spaces, but
kept the zeros as typed, so the same cooperative could be created twice and a lookup with the
other spelling found nothing. domain/identifiers.py now returns one canonical spelling for every
write and lookup: the serial's leading zeros dropped and the serial padded to seven digits,
upper-case, one space before the year. Older dinas numbers (`518.08/96/BH/XIV.10/VIII/2008`)
follow no common scheme and keep their spelling.

Stored numbers. Every number that reads as a Kemenkumham number (in any case, with any spaces
around the year or the whole) is rewritten in the canonical spelling, with a new version, so a
client holding the old one rereads it before it writes (its history has no entry for the change:
no client made it; the change feed carries it). A stored eligibility decision about a
cooperative keeps, as `subject_key`, the number the guarantor asked with, which the service
looks the cooperative up by again when a guarantee is recorded on the decision: it is rewritten
the same way, so the decision still finds its cooperative.

Two cooperatives holding spellings of one number are not merged: which record is the
cooperative, and what becomes of the other's members, participations, guarantees and history, is
the owner's decision, not the migration's, and keeping both would leave a lookup by the number
finding one of them at random. Before changing anything the migration stops, naming each such
number with the cooperatives that hold it, e.g.

    AHU-0000032.AH.01.26.TAHUN 2019: cooperatives 12 ('AHU-000032.AH.01.26.TAHUN 2019'), 40 (...)

and the owner keeps one record of each (moving what refers to the others to it and deleting
them, or correcting a number that was mistyped) and migrates again.

The database then holds the spelling: a CHECK constraint refuses a Kemenkumham number stored in
any other, so raw SQL, the demo loader or a future import cannot store a second spelling beside
the first either. A value that starts with "AHU" but does not read as the pattern is left alone,
as the constraint leaves it: the API refuses such a value, so only raw SQL could have stored
one, and it is no spelling of a Kemenkumham number.

Revision ID: 0034
Revises: 0033
"""

import sqlalchemy as sa
from alembic import op

revision = "0034"
down_revision = "0033"
branch_labels = None
depends_on = None

SERIAL_DIGITS = 7
"""As domain/identifiers.py pads the serial today: a migration does not follow later edits."""
SHOWN = 50
"""How many colliding numbers the refusal lists."""

# Matched case-insensitively (~*): any spelling the API reads as a Kemenkumham number.
KEMENKUMHAM = r"^\s*AHU-[0-9]+\.AH\.01\.26\.TAHUN\s+[0-9]{4}\s*$"
CANONICAL = (
    rf"^AHU-([0-9]{{{SERIAL_DIGITS}}}|[1-9][0-9]{{{SERIAL_DIGITS},}})\.AH\.01\.26\.TAHUN [0-9]{{4}}$"
)
CONSTRAINT = f"legal_entity_no !~* '{KEMENKUMHAM}' OR legal_entity_no ~ '{CANONICAL}'"


def _canonical(column: str) -> str:
    """SQL for the canonical spelling of `column`, when it matches KEMENKUMHAM. lpad to the width
    alone would cut a longer serial, so it pads to the serial's own length when that is more."""
    serial = f"ltrim(substring(upper({column}) from 'AHU-([0-9]+)'), '0')"
    padded = f"lpad({serial}, greatest({SERIAL_DIGITS}, length({serial})), '0')"
    year = rf"substring({column} from '([0-9]{{4}})\s*$')"
    return f"'AHU-' || {padded} || '.AH.01.26.TAHUN ' || {year}"


SPELLINGS = f"""
SELECT id, legal_entity_no AS stored, {_canonical("legal_entity_no")} AS canonical
  FROM cooperatives WHERE legal_entity_no ~* '{KEMENKUMHAM}'
"""
COLLISIONS = f"""
SELECT canonical, array_agg(id ORDER BY id) AS ids, array_agg(stored ORDER BY id) AS spellings
  FROM ({SPELLINGS}) s GROUP BY canonical HAVING count(*) > 1 ORDER BY min(id)
"""
RESPELL_COOPERATIVES = f"""
UPDATE cooperatives c
   SET legal_entity_no = s.canonical, version = c.version + 1, updated_at = now()
  FROM ({SPELLINGS}) s WHERE s.id = c.id AND s.canonical <> c.legal_entity_no
"""
RESPELL_DECISIONS = f"""
UPDATE eligibility_decisions SET subject_key = {_canonical("subject_key")}
 WHERE cooperative_id IS NOT NULL AND subject_key ~* '{KEMENKUMHAM}'
   AND subject_key <> {_canonical("subject_key")}
"""


def _listed(lines: list[str]) -> str:
    shown = "".join(f"\n  {line}" for line in lines[:SHOWN])
    return shown + (f"\n  … and {len(lines) - SHOWN} more" if len(lines) > SHOWN else "")


def upgrade() -> None:
    collisions = op.get_bind().execute(sa.text(COLLISIONS)).all()
    if collisions:
        raise RuntimeError(
            f"migration 0034 changed nothing: {len(collisions)} legal-entity number(s) are each "
            "held by more than one cooperative, spelled with other leading zeros, case or "
            "spaces; one number is one cooperative, so keep one record of each (move what "
            "refers to the others to it and delete them, or correct a mistyped number: "
            "UPDATE cooperatives SET legal_entity_no = '…' WHERE id = …):"
            + _listed(
                [
                    f"{row.canonical}: cooperatives "
                    + ", ".join(
                        f"{id_} ({spelling!r})"
                        for id_, spelling in zip(row.ids, row.spellings, strict=True)
                    )
                    for row in collisions
                ]
            )
            + "\nthen migrate again"
        )
    op.execute(RESPELL_COOPERATIVES)
    op.execute(RESPELL_DECISIONS)
    op.create_check_constraint(
        op.f("ck_cooperatives_legal_entity_no_canonical"), "cooperatives", CONSTRAINT
    )


def downgrade() -> None:
    """The numbers stay in the canonical spelling: their old spellings are not kept."""
    op.drop_constraint(
        op.f("ck_cooperatives_legal_entity_no_canonical"), "cooperatives", type_="check"
    )
