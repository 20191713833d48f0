"""A participation deleted with its business is removed from the programme's region's feed too.

A participation whose business has left the programme's region (possible once it ended) is
that region's record: its readers read it, and the change feed carries its changes to them
(db/queries/change_feed.py `_left_behind`, which finds it by its row). Deleted with its business,
its removal was noted only where the business lies (0056's BEFORE DELETE triggers), and by the
time a reader asked, the row `_left_behind` needs was gone: the programme's region's copies went
on holding it. The removal is now noted twice for such a participation: where the business
lies, as before, and at the programme's jurisdiction (its province, regency and kecamatan as
the code names them). A reader whose jurisdiction holds both places gets REMOVED twice, which
a copy applies as once. A national programme holds every business, so it needs no second entry.
A downgrade puts back 0056's functions.

Revision ID: 0058
Revises: 0057
"""

from alembic import op

from db.migrations.earlier import migration

revision = "0058"
down_revision = "0057"
branch_labels = None
depends_on = None


M0056 = migration("0056_participation_entries_name_their_business_place.py")

PROGRAMME_PLACE = """
         SELECT split_part(g.jurisdiction, '.', 1),
                CASE WHEN length(g.jurisdiction) >= 5 THEN left(g.jurisdiction, 5) END,
                CASE WHEN length(g.jurisdiction) > 5 THEN g.jurisdiction END
          WHERE g.jurisdiction NOT IN ('ID', OLD.province_code, OLD.regency_code,
                                       coalesce(OLD.district_code, OLD.regency_code))"""
"""The programme's jurisdiction as an entry's place, where the business (OLD) lies outside it
(the test of db/queries/programmes.lies_in): a province's code is 2 characters, a regency's 5."""


def _removals_function(table: str) -> str:
    """Before the business `table`'s row goes, the removal of each of its participations where
    the business lies and, for one whose business has left the programme's region, there too."""
    return f"""
CREATE OR REPLACE FUNCTION {M0056._name(table)}() RETURNS trigger LANGUAGE plpgsql
{M0056.DEFINER} AS $$
DECLARE
    logged bigint;
BEGIN
    INSERT INTO change_pending ({M0056.ENTRY})
    SELECT 'participation', p.id::text, 'delete', false, false,
           place.province, place.regency, place.district, NULL, NULL, NULL, NULL
      FROM participations p JOIN programmes g ON g.id = p.programme_id
           CROSS JOIN LATERAL (
               SELECT OLD.province_code, OLD.regency_code, OLD.district_code
               UNION ALL{PROGRAMME_PLACE}
           ) AS place (province, regency, district)
     WHERE p.{M0056.SUBJECTS[table]} = OLD.id
     ORDER BY p.id;{M0056.NOTE_TRANSACTION}
    RETURN OLD;
END $$;
"""


def upgrade() -> None:
    for table in M0056.SUBJECTS:
        op.execute(_removals_function(table))


def downgrade() -> None:
    for table in M0056.SUBJECTS:
        op.execute(f"DROP TRIGGER {M0056._name(table)} ON {table}")
        op.execute(f"DROP FUNCTION {M0056._name(table)}()")
        op.execute(M0056._removals_function(table))
        op.execute(
            f"CREATE TRIGGER {M0056._name(table)} BEFORE DELETE ON {table}"
            f" FOR EACH ROW EXECUTE FUNCTION {M0056._name(table)}()"
        )
