"""Perturbed figures are computed from releases: copies of what figures read, made in one
snapshot, in two schemas that take turns (db/releases.py).

Computed from the live registers, each routine change another writer made to a cell drew its
noise again, a fresh reading of every difference isolating a hidden part of it; a ministry
averaged about a hundred of them down to a lone business. `figures_a` and `figures_b` hold the
copies; `figure_releases` is the one row saying which is current.

The owner makes every copy, through `make_figure_release`, a SECURITY DEFINER function the
service may call and nothing else: the service reads the copies (db/roles.py has the owner's
new tables there readable by it, whoever calls the function) and may create nothing in their
schemas, so whoever holds its credentials can plant no view over the live tables in a
release's place, nor code that runs in other clients' requests, nor anything that outlives the
credentials. What a release copies is written here alone: counts, sums, regions, record keys,
founding and starting years (not dates), never a name, NIB or owner. A later migration that
needs another column replaces the function.

The function takes the pointer row's lock without waiting (a role that may not update the row
cannot hold it, as one could an advisory lock anyone may take; the service, which reads the
copies, can still hold a release up by holding the copy it would replace, for as long as
db/releases.py's lock wait, after which it is tried again and reported overdue), and makes no
release when the current one is younger than `min_seconds`: two processes that both found one
due make one. The first release is made by `serve` as it starts (or `sinergi figures release`):
until then perturbed figures are refused.

Revision ID: 0031
Revises: 0030
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None

COPIES = {
    "msmes": "id, kbli_section, scale, province_code, regency_code, district_code,"
    " date_trunc('year', established_on)::date AS established_on, capital, annual_turnover,"
    " employees, cooperative_id, is_active, cell_key",
    "cooperatives": "id, type, province_code, regency_code, district_code, members_male,"
    " members_female, business_volume, assets, book_year, status, cell_key",
    "participations": "id, programme_id, msme_id, cooperative_id, status",
    "msme_scale_history": "msme_id, scale, effective_from",
    "guarantees": "guarantor_client_id, msme_id, cooperative_id, province_code, regency_code,"
    " amount, coverage_amount, date_trunc('year', starts_on)::date AS starts_on, status,"
    " cell_key",
    "msme_rollup_regency": "*",
    "msme_rollup_province_kbli": "*",
    "msme_rollup_province_year": "*",
    "msme_rollup_regency_kbli": "*",
    "cooperative_rollup_province": "*",
    "cooperative_rollup_regency": "*",
}
"""Table -> what a release copies of it: what the figure statements read
(db/queries/aggregates.py, guarantees.py, indicator_values.py), rollups whole."""

INDEXES = {
    "msmes": ("id", "province_code", "regency_code", "cooperative_id"),
    "cooperatives": ("id", "province_code", "regency_code"),
    "participations": ("programme_id, msme_id", "programme_id, cooperative_id"),
    "msme_scale_history": ("msme_id",),
}
"""What filtered figures look rows up by, as on the live tables."""


def _copies() -> str:
    statements = []
    for table, columns in COPIES.items():
        quoted = columns.replace("'", "''")  # inside format()'s string literal
        statements.append(f"EXECUTE format('DROP TABLE IF EXISTS %I.{table}', target);")
        statements.append(
            f"EXECUTE format('CREATE TABLE %I.{table} AS SELECT {quoted}"
            f" FROM public.{table}', target);"
        )
        for index in INDEXES.get(table, ()):
            statements.append(f"EXECUTE format('CREATE INDEX ON %I.{table} ({index})', target);")
        statements.append(f"EXECUTE format('ANALYZE %I.{table}', target);")
    return "\n    ".join(statements)


def upgrade() -> None:
    op.execute("CREATE SCHEMA figures_a")
    op.execute("CREATE SCHEMA figures_b")
    op.execute(
        "CREATE TABLE figure_releases ("
        " only_row boolean DEFAULT true CONSTRAINT pk_figure_releases PRIMARY KEY"
        "  CONSTRAINT ck_figure_releases_one_row CHECK (only_row),"
        " number bigint NOT NULL DEFAULT 0,"
        " released_at timestamptz,"
        " schema_name text CONSTRAINT ck_figure_releases_schema_name"
        "  CHECK (schema_name IN ('figures_a', 'figures_b')))"
    )
    op.execute("INSERT INTO figure_releases DEFAULT VALUES")
    op.execute(
        f"""
CREATE FUNCTION make_figure_release(min_seconds double precision)
RETURNS TABLE (number bigint, released_at timestamptz, schema_name text)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
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
    {_copies()}
    RETURN QUERY
        UPDATE public.figure_releases AS r
           SET number = r.number + 1, released_at = now(), schema_name = target
        RETURNING r.number, r.released_at, r.schema_name;
END
$$
"""
    )
    op.execute("REVOKE EXECUTE ON FUNCTION make_figure_release(double precision) FROM PUBLIC")


def downgrade() -> None:
    # Copies only: the registers they were made from are untouched.
    op.execute("DROP FUNCTION make_figure_release(double precision)")
    op.execute("DROP TABLE figure_releases")
    op.execute("DROP SCHEMA figures_b CASCADE")
    op.execute("DROP SCHEMA figures_a CASCADE")
