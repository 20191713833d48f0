"""A figure release copies each programme's region: the `programme` filter asks for it.

A participation whose business has left the programme's region (possible once it ended) is
that region's record, which the region the business moved to does not see
(db/queries/programmes.py `visible`). The `programme` filter of figures counted it all the
same, in the region the business lies in now, whose readers read their own figures exactly: a
count of one there said that their business had completed another region's programme. Figures
now count only a participation whose business still lies in the programme's region
(`programmes.left_behind`), which reads the programme's jurisdiction beside the business's
place; a figure statement reads a release (db/releases.py), so a release copies `programmes`'
id and jurisdiction: public reference data, no personal data.

The releases made before this revision gain the copy, taken now: a programme's region does not
change, and until the next release the filtered figures read from one would otherwise fail.
A downgrade puts back the release function of 0059 and drops the copies.

Revision ID: 0060
Revises: 0059
"""

from alembic import op

from db.migrations.earlier import migration, swapped

revision = "0060"
down_revision = "0059"
branch_labels = None
depends_on = None

RELEASED_PROGRAMMES = "id, jurisdiction"
"""What a release copies of a programme: what `programmes.left_behind` reads of it."""

RELEASES = ("figures_a", "figures_b")


def _release_copying(programmes: bool) -> str:
    """0059's release function (0037's, copying 0055's scale history columns, its copies read
    only but by their owner), with the programmes' regions if `programmes`."""
    releases = migration("0031_figure_releases.py")
    history = migration("0055_scale_history_turnover_year.py").RELEASED_HISTORY
    copies = {**releases.COPIES, "msme_scale_history": history}
    if programmes:
        copies["programmes"] = RELEASED_PROGRAMMES
    swapped(releases, COPIES=copies)  # what its _copies() reads
    figures = migration("0033_insider_figures.py")
    swapped(figures, migration=lambda file: releases)  # the 0031 its _copying() loads
    copying: str = figures._copying("copy_figure_release")
    read_only: str = migration("0059_release_copies_read_only.py").read_only(copying)
    return read_only


def _in_releases(statement: str) -> str:
    """`statement` (`%I`: the schema) run for each release that has been made (holds copies)."""
    quoted = statement.replace("'", "''")
    return f"""
DO $$
DECLARE
    release text;
BEGIN
    FOREACH release IN ARRAY ARRAY{list(RELEASES)} LOOP
        IF to_regclass(format('%I.participations', release)) IS NOT NULL THEN
            EXECUTE format('{quoted}', release);
        END IF;
    END LOOP;
END
$$
"""


def upgrade() -> None:
    op.execute(_release_copying(programmes=True))
    op.execute(
        _in_releases(
            "CREATE TABLE IF NOT EXISTS %I.programmes AS"
            f" SELECT {RELEASED_PROGRAMMES} FROM public.programmes"
        )
    )


def downgrade() -> None:
    op.execute(_release_copying(programmes=False))
    op.execute(_in_releases("DROP TABLE IF EXISTS %I.programmes"))
