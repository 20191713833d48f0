"""An MSME's scale is the one its figures give (PP 7/2021); the declared one is kept apart.

A record's `scale` was the declared one (as on the NIB) whenever either figure supported it,
since Pasal 35 groups businesses by capital OR annual sales: a business declared micro on its
capital of Rp900 juta, with Rp20 miliar of annual sales, was stored micro, and every figure,
indicator (UKM_PROPORSI) and graduation read from `scale` counted it micro, while eligibility,
which computes the scale from the sales, called it medium. Programmes act on annual sales
(Pasal 35(4)). `scale` is now the scale the figures give: annual sales when known, else capital,
else (no figures) the declared one (domain/scale.py `registered_scale`); the declaration is kept
in the new column `declared_scale` (the API's `declaredScale`).

Stored records are brought to that rule in one set-based UPDATE: each record whose figures give
another scale has its scale moved into `declared_scale` and the computed one stored, with a new
version, so a client holding the old one rereads it before it writes, and a history entry
(operation `scale`, by client `migration:0037`): an imported record's creation entry is rebuilt
from the record as it is now, each column taken back to the `before` of its first later change
(0015), so without that entry it would say the record was created with the new scale. Its
triggers keep the rest consistent: the rollups move the record to its cell (0006, 0016), the
change feed carries the change (0014), and an imported record whose first scale entry was still
read from it has that entry written out with the scale it had (0016).

A record whose scale does not change (its figures agree with it, or it has none and its scale is
the declared one) is left as it is, `declared_scale` null: no new version and no change feed
entry for a column no one could read before, so a client mirroring the feed holds the null the
API answers. Where the figures agree, whether the scale was declared or computed is not recorded
anyway; a record without figures has its scale read as its declaration when it is next written
(resolvers/msme_writes.py `_merged`).

The scale history is then held to the same rule: an entry whose figures give another scale is
given it, so graduations ("naik kelas") count steps the figures made, not declarations. A record
whose latest entry no longer names its scale (a declaration kept across an update of the
figures, which wrote no entry) gets an entry dated today, so the history ends where the record
stands; but nothing grew today, and when the figures changed is not recorded, so the entry is a
correction (rule version `PP7_2021/0037`, domain/scale.py CORRECTIONS): the next step is counted
from it, it is never counted as a graduation itself. An entry a write made today that the record
has since left is replaced by the correction, so it is not counted either.

`record_history` names `declared_scale` among the columns of an imported record's creation.

The thresholds are PP 7/2021's as domain/scale.py declares them today (a migration does not
follow later edits; tests/test_migrations.py holds the two equal). A downgrade drops the
declarations and leaves the computed scales, which fit the figures as the earlier rule
requires.

Revision ID: 0037
Revises: 0036
"""

from alembic import op

from db.migrations.earlier import migration, swapped

revision = "0037"
down_revision = "0036"
branch_labels = None
depends_on = None

CORRECTION = "PP7_2021/0037"
"""The rule version of the history entries this migration adds: domain/scale.py CORRECTIONS."""
CAPITAL_LIMITS = ((1_000_000_000, "micro"), (5_000_000_000, "small"), (10_000_000_000, "medium"))
SALES_LIMITS = ((2_000_000_000, "micro"), (15_000_000_000, "small"), (50_000_000_000, "medium"))
"""(inclusive upper bound in rupiah, scale), anything above the last: large."""
SCALES = ("micro", "small", "medium", "large")
CLIENT = "migration:0037"
ORGANISATION = "Sinergi migration 0037 (PP 7/2021 scale from the figures)"


def _by(amount: str, limits: tuple[tuple[int, str], ...]) -> str:
    steps = " ".join(f"WHEN {amount} <= {upper} THEN '{scale}'" for upper, scale in limits)
    return f"CASE {steps} ELSE 'large' END"


def registered(capital: str, sales: str, declared: str) -> str:
    """SQL for domain/scale.py `registered_scale` over the named columns."""
    return (
        f"CASE WHEN {sales} IS NOT NULL THEN {_by(sales, SALES_LIMITS)}"
        f" WHEN {capital} IS NOT NULL THEN {_by(capital, CAPITAL_LIMITS)}"
        f" ELSE {declared} END"
    )


_COMPUTED = registered("capital", "annual_turnover", "scale")
RECOMPUTE = f"""
WITH changed AS (
    UPDATE msmes
       SET declared_scale = scale, scale = {_COMPUTED},
           version = version + 1, updated_at = now()
     WHERE {_COMPUTED} <> scale
    RETURNING id, version, declared_scale, scale
)
INSERT INTO record_changes (client_id, organisation, record_kind, record_id, operation, version,
                            changes)
SELECT '{CLIENT}', '{ORGANISATION}', 'msme', id, 'scale', version,
       field_change('scale', declared_scale, scale)
       || field_change('declared_scale', NULL::varchar, declared_scale)
  FROM changed
 ORDER BY id
"""

RECOMPUTE_HISTORY = f"""
UPDATE msme_scale_history
   SET scale = {registered("capital", "annual_sales", "scale")}
 WHERE {registered("capital", "annual_sales", "scale")} <> scale
"""

# Only rows can disagree: an imported record's first entry still read from its batch (0016) is
# read from the record itself.
FOLLOW_RECORDS = f"""
INSERT INTO msme_scale_history (msme_id, scale, effective_from, annual_sales, capital,
                                rule_version)
SELECT m.id, m.scale, current_date, m.annual_turnover, m.capital, '{CORRECTION}'
  FROM (SELECT DISTINCT ON (msme_id) msme_id, scale FROM msme_scale_history
         ORDER BY msme_id, effective_from DESC) AS latest
  JOIN msmes m ON m.id = latest.msme_id
 WHERE latest.scale <> m.scale
 ORDER BY m.id
ON CONFLICT (msme_id, effective_from) DO UPDATE
   SET scale = excluded.scale, annual_sales = excluded.annual_sales,
       capital = excluded.capital, rule_version = excluded.rule_version, recorded_at = now()
"""


def _release_copying(history_columns: str) -> str:
    """0033's owner-only release function, copying `history_columns` of the scale history: the
    graduation figures tell a correction from growth by its rule version, and a ministry's are
    read from a release."""
    releases = migration("0031_figure_releases.py")
    copies = {**releases.COPIES, "msme_scale_history": history_columns}
    swapped(releases, COPIES=copies)  # what its _copies() reads
    figures = migration("0033_insider_figures.py")
    swapped(figures, migration=lambda file: releases)  # the 0031 its _copying() loads
    copying: str = figures._copying("copy_figure_release")
    return copying


RELEASED_HISTORY = "msme_id, scale, effective_from, rule_version"
RELEASES_GAIN_RULE_VERSION = """
DO $$
DECLARE
    release text;
BEGIN
    FOREACH release IN ARRAY ARRAY['figures_a', 'figures_b'] LOOP
        IF to_regclass(format('%I.msme_scale_history', release)) IS NOT NULL THEN
            EXECUTE format('ALTER TABLE %I.msme_scale_history'
                           ' ADD COLUMN rule_version text NOT NULL DEFAULT ''''',
                           release);
            EXECUTE format('UPDATE %I.msme_scale_history AS r SET rule_version = h.rule_version'
                           ' FROM public.msme_scale_history AS h'
                           ' WHERE h.msme_id = r.msme_id AND h.effective_from = r.effective_from',
                           release);
        END IF;
    END LOOP;
END
$$
"""
"""The releases made before this revision, given the column the next release copies (a
ministry reads its graduations from one until the next is made)."""


def _record_history(columns: tuple[str, ...]) -> str:
    """0015's view, an imported record's creation naming `columns`."""
    batches = migration("0015_import_batches.py")
    view: str = batches.VIEW
    for old, new in (
        (batches._CURRENT, ", ".join(f"'{column}', m.{column}" for column in columns)),
        (batches._NAMES, ", ".join(f"'{column}'" for column in columns)),
    ):
        assert view.count(old) == 1
        view = view.replace(old, new)
    return view.replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)


def upgrade() -> None:
    allowed = ", ".join(f"'{scale}'" for scale in SCALES)
    op.execute(
        "ALTER TABLE msmes ADD COLUMN declared_scale varchar(6)"
        f" CONSTRAINT ck_msmes_declared_scale CHECK (declared_scale IN ({allowed}))"
    )
    op.execute(RECOMPUTE)
    op.execute(RECOMPUTE_HISTORY)
    op.execute(FOLLOW_RECORDS)
    columns = migration("0015_import_batches.py").RECORD_COLUMNS
    at = columns.index("scale") + 1
    op.execute(_record_history((*columns[:at], "declared_scale", *columns[at:])))
    op.execute(_release_copying(RELEASED_HISTORY))
    op.execute(RELEASES_GAIN_RULE_VERSION)


def downgrade() -> None:
    op.execute(_release_copying(migration("0031_figure_releases.py").COPIES["msme_scale_history"]))
    op.execute(_record_history(migration("0015_import_batches.py").RECORD_COLUMNS))
    op.execute("ALTER TABLE msmes DROP COLUMN declared_scale")
