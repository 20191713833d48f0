"""What the service role may do to published figures: no more than its code does.

An insider holding the service's credentials could, through the privileges `serve` was lent:

- Make releases at will: `make_figure_release(min_seconds)` took the caller's minimum, the hour
  of SINERGI_FIGURES_RELEASE_SECONDS being checked in Python alone; a hundred releases in a row
  gave a ministry a hundred readings of every changed cell, a lone business's turnover to within
  half a percent. The function the service may call now makes none while the current release is
  younger than `FLOOR_SECONDS` (the settings' minimum, sinergi/settings.py; a test ties the two),
  whatever it is asked. The copying is `copy_figure_release`, the owner's alone, with no floor:
  what `sinergi figures release` and `demo-data` call, as the owner, to release at once.
- Write figures into a release: the rollups' triggers (0006, 0012, 0016) ran as the writer, so
  the service held every write on the rollups; it could raise a cell, have a release made,
  put the cell back and commit, and ministries read the forged figure until the next release
  with nothing in the change log. The triggers' functions now run as their owner, with 0028's
  search path, and db/roles.py grants the service only SELECT on the rollups. They are
  statement-level triggers over transition tables, so running as the owner costs one switch
  of role per statement, not per row (an import's chunk is one statement).

Revision ID: 0033
Revises: 0032
"""

from alembic import op

from db.migrations.earlier import migration

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None

FLOOR_SECONDS = 3600
"""The least age of the current release before the service may have another made: the
settings' MIN_RELEASE_SECONDS (tests/test_figure_releases.py holds the two equal)."""

ROLLUP_FUNCTIONS = [
    f"{base}_rollups_{operation}()"
    for base in ("msmes", "cooperatives")
    for operation in ("insert", "update", "delete", "truncate")
]
"""The functions of the triggers that keep the rollups (0006; their bodies 0012's and 0016's)."""

RETURNS = "RETURNS TABLE (number bigint, released_at timestamptz, schema_name text)"
DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp"


def _copying(name: str) -> str:
    """0031's function, as `name`: makes a release unless the current one is younger than
    `min_seconds`, or another is being made."""
    return f"""
CREATE OR REPLACE FUNCTION {name}(min_seconds double precision) {RETURNS}
LANGUAGE plpgsql {DEFINER} AS $$
DECLARE
    pointer public.figure_releases;
    target text;
BEGIN
    BEGIN
        SELECT * INTO pointer FROM public.figure_releases FOR UPDATE NOWAIT;
    EXCEPTION WHEN lock_not_available THEN
        RETURN;  -- another release is being made
    END;
    IF pointer.schema_name IS NOT NULL
       AND pointer.released_at > now() - make_interval(secs => min_seconds) THEN
        RETURN;  -- made since whoever asked found one due
    END IF;
    target := CASE WHEN pointer.schema_name = 'figures_a' THEN 'figures_b' ELSE 'figures_a' END;
    {migration("0031_figure_releases.py")._copies()}
    RETURN QUERY
        UPDATE public.figure_releases AS r
           SET number = r.number + 1, released_at = now(), schema_name = target
        RETURNING r.number, r.released_at, r.schema_name;
END
$$
"""


# The service's: its caller's minimum, never below the floor (greatest() ignores a NULL; a NaN
# or an infinity is an interval out of range, an error).
FLOORED = f"""
CREATE OR REPLACE FUNCTION make_figure_release(min_seconds double precision) {RETURNS}
LANGUAGE sql {DEFINER} AS $$
    SELECT * FROM public.copy_figure_release(greatest(min_seconds, {FLOOR_SECONDS}))
$$
"""


def upgrade() -> None:
    op.execute(_copying("copy_figure_release"))
    op.execute("REVOKE EXECUTE ON FUNCTION copy_figure_release(double precision) FROM PUBLIC")
    # Replaced in place: the service keeps its grant (db/roles.py), PUBLIC still has none.
    op.execute(FLOORED)
    for function in ROLLUP_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} {DEFINER}")
        op.execute(f"REVOKE EXECUTE ON FUNCTION {function} FROM PUBLIC")


def downgrade() -> None:
    for function in ROLLUP_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} SECURITY INVOKER RESET search_path")
        op.execute(f"GRANT EXECUTE ON FUNCTION {function} TO PUBLIC")
    op.execute(_copying("make_figure_release"))
    op.execute("DROP FUNCTION copy_figure_release(double precision)")
