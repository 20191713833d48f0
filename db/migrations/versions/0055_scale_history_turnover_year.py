"""A scale history entry keeps the year its annual sales were made; graduations count in it.

"Naik kelas" in year t is computedScale(t-1) = micro and computedScale(t) small or medium, by
the annual sales of those years (PP 7/2021 Pasal 35(4)). The history kept only the day a scale
took effect, and the graduation figures (db/queries/aggregates.py `graduation_source`) counted
a change in that day's year: a report made in February 2026 of the sales of 2025 counted as a
2026 graduation. `reportScaleChange` was told the year (`turnoverYear`) and stored it on the
record only, where the next report overwrites it.

Each entry now has `turnover_year`, the year of its `annual_sales`, written by every writer from
the record's `turnover_year` it was computed from (null when the entry has no annual sales: a
scale from capital alone rests on no year's sales). The graduation figures count a change in
its turnover year, and in the year it took effect where that is null.

Entries written before this revision keep a null year, and so keep being counted as they were:
the year was not stored, and the record's `turnover_year` today is that of its latest figures,
not necessarily those an older entry was computed from, so no backfill could be told from a
guess. An imported record's first entry, still read from the record through its batch (0016),
takes the record's year as it takes its sales, and its trigger now writes the entry out before
that year changes too (a first entry is never a graduation, so only what it shows moves).

A release copies the column (the release function, last 0037's); the releases made before it
gain it, empty, as every entry was then: a ministry's graduations count alike from either.

Revision ID: 0055
Revises: 0054
"""

from alembic import op

from db.migrations.earlier import migration

revision = "0055"
down_revision = "0054"
branch_labels = None
depends_on = None

SALES_YEAR = "CASE WHEN {sales} IS NOT NULL THEN {year} END"
"""SQL for an entry's turnover year from a record's: none without sales to be of a year."""


def _replaced(text: str, *edits: tuple[str, str]) -> str:
    """`text` with each (old, new) of `edits` made, each old found exactly once."""
    for old, new in edits:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


BATCHES = migration("0016_import_scale_batches.py")
_RECORD_YEAR = SALES_YEAR.format(sales="m.annual_turnover", year="m.turnover_year")
VIEW = _replaced(
    BATCHES.VIEW,
    ("CREATE VIEW", "CREATE OR REPLACE VIEW"),
    ("recorded_at\n  FROM msme_scale_history", "recorded_at, turnover_year\n  FROM msme_scale_history"),
    ("b.at AS recorded_at\n", f"b.at AS recorded_at, {_RECORD_YEAR} AS turnover_year\n"),
)
"""0016's view, each entry with its turnover year (appended: a view keeps its columns' order)."""

TRIGGER_FUNCTION = _replaced(
    BATCHES.TRIGGER_FUNCTION,
    ("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION"),
    ("rule_version, recorded_at)\n", "rule_version, recorded_at, turnover_year)\n"),
    (
        "b.rule_version, b.at\n",
        f"b.rule_version, b.at,\n           "
        f"{SALES_YEAR.format(sales='o.annual_turnover', year='o.turnover_year')}\n",
    ),
    ("(o.scale, o.annual_turnover, o.capital)", "(o.scale, o.annual_turnover, o.capital, o.turnover_year)"),
    ("(n.scale, n.annual_turnover, n.capital)", "(n.scale, n.annual_turnover, n.capital, n.turnover_year)"),
)
"""0016's trigger: a batch's first entry is written out with its year, before that year changes."""

OLD_TRIGGER_FUNCTION = BATCHES.TRIGGER_FUNCTION.replace("CREATE FUNCTION", "CREATE OR REPLACE FUNCTION")

REGISTERED = migration("0037_registered_scale.py")
RELEASED_HISTORY = f"{REGISTERED.RELEASED_HISTORY}, turnover_year"
"""What a release copies of the history: 0037's columns and the turnover year."""

RELEASES = ("figures_a", "figures_b")


def _in_releases(statement: str) -> str:
    """`statement` (`%I`: the schema) run for each release that holds a copy of the history."""
    quoted = statement.replace("'", "''")
    return f"""
DO $$
DECLARE
    release text;
BEGIN
    FOREACH release IN ARRAY ARRAY{list(RELEASES)} LOOP
        IF to_regclass(format('%I.msme_scale_history', release)) IS NOT NULL THEN
            EXECUTE format('{quoted}', release);
        END IF;
    END LOOP;
END
$$
"""


def _restored(view: str, definition: str) -> str:
    """`view` made again as `definition`, with the grants it had: a view's columns cannot be
    dropped by replacing it (db/roles.py grants them again only on the way up)."""
    return f"""
DO $$
DECLARE
    grants text[] := ARRAY(SELECT format('GRANT %s ON {view} TO %I', privilege_type,
                                         grantee)
                             FROM information_schema.table_privileges
                            WHERE table_schema = 'public' AND table_name = '{view}'
                              AND grantee <> current_user);
    statement text;
BEGIN
    DROP VIEW {view};
    EXECUTE {"'" + definition.replace("'", "''") + "'"};
    FOREACH statement IN ARRAY grants LOOP
        EXECUTE statement;
    END LOOP;
END
$$
"""


RESTORED_VIEW = _restored("scale_history", BATCHES.VIEW)
"""Going down, 0016's view made again."""


def upgrade() -> None:
    op.execute("ALTER TABLE msme_scale_history ADD COLUMN turnover_year smallint")
    op.execute(VIEW)
    op.execute(TRIGGER_FUNCTION)
    op.execute(REGISTERED._release_copying(RELEASED_HISTORY))
    op.execute(_in_releases("ALTER TABLE %I.msme_scale_history ADD COLUMN turnover_year smallint"))


def downgrade() -> None:
    op.execute(REGISTERED._release_copying(REGISTERED.RELEASED_HISTORY))
    op.execute(_in_releases("ALTER TABLE %I.msme_scale_history DROP COLUMN turnover_year"))
    op.execute(OLD_TRIGGER_FUNCTION)
    op.execute(RESTORED_VIEW)
    op.execute("ALTER TABLE msme_scale_history DROP COLUMN turnover_year")
