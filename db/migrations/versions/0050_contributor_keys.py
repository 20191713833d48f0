"""A sum's noise is keyed on its contributors, not on every record of its cell.

A cell's key was the sum of all its records' keys, and every measure drew its noise from it.
Records whose value is missing or zero change neither a sum nor its sum of squares, but they
changed the key: cells differing only by such records (a regency's one business with
employees, and others without, spread over activity, scale, section and year) published
independent readings of the same sum. A sum's noise is 0.5 to 1.5 times its scale, so each
reading rules out a band around itself, and fifteen tables of one regency pinned a lone
business's employees exactly and its turnover to 2 %. Each rollup cell now keeps, per summed
measure, the key sum of its contributors (`<measure>_key_sum`: records whose value is neither
NULL nor 0), and for MSMEs, whose values may be missing, the key sum of the records with a
value (`<measure>_valued_key_sum`), on which an average's divisor is keyed as their count
would be. The triggers of 0016 (0012's measures, 0033's owner rights) keep them too; the
rollups are rebuilt from the records, and so are those of the releases already made, from the
records each release copied, so that figures read from a release made before this revision
are keyed the same way until the next one.

Revision ID: 0050
Revises: 0049
"""

from types import ModuleType

from alembic import op

from db.migrations.earlier import migration, swapped

revision = "0050"
down_revision = "0049"
branch_labels = None
depends_on = None

Measures = list[tuple[str, str, str]]

SOURCES = {
    "msmes": {"turnover": "annual_turnover", "capital": "capital", "employees": "employees"},
    "cooperatives": {
        "business_volume": "business_volume",
        "assets": "assets",
        "members": "members_male + members_female",
    },
}
"""Each rollup's summed measures and their expressions over a record (as 0006's)."""
VALUED = ("msmes",)
"""The bases whose values may be missing (their rollups count the values, 0006's `<m>_n`)."""
RELEASES = ("figures_a", "figures_b")


def _added(base: str) -> Measures:
    """The columns this revision adds to the rollups of `base`, with their expressions."""
    added = []
    for measure, source in SOURCES[base].items():
        added.append((f"{measure}_key_sum", f"CASE WHEN {source} <> 0 THEN cell_key ELSE 0 END"))
        if base in VALUED:
            added.append(
                (
                    f"{measure}_valued_key_sum",
                    f"CASE WHEN {source} IS NOT NULL THEN cell_key ELSE 0 END",
                )
            )
    return [(column, expression, "bigint") for column, expression in added]


def _modules(with_added: bool) -> tuple[ModuleType, ModuleType, ModuleType]:
    """0006, 0012 and 0016 as their builders see them: 0012's measures with this revision's
    when `with_added` (0016's trigger functions read them from 0012's `_added`)."""
    rollups, cell_keys = migration("0006_rollups.py"), migration("0012_cell_keys.py")
    if with_added:
        before = cell_keys._added
        swapped(cell_keys, _added=lambda base: [*before(base), *_added(base)])
    batches = migration("0016_import_scale_batches.py")
    loaded = {"0006_rollups.py": rollups, "0012_cell_keys.py": cell_keys}
    swapped(batches, migration=loaded.__getitem__)
    return rollups, cell_keys, batches


def _trigger_functions(with_added: bool) -> None:
    """0016's trigger functions over 0012's measures (and this revision's), as their owner
    (0033: CREATE OR REPLACE resets what ALTER FUNCTION set)."""
    _, _, batches = _modules(with_added)
    for function in batches._rollup_functions():
        op.execute(function)
    insider = migration("0033_insider_figures.py")
    for function in insider.ROLLUP_FUNCTIONS:
        op.execute(f"ALTER FUNCTION {function} {insider.DEFINER}")


def _rebuilds(schema: str) -> list[str]:
    """Each rollup of `schema` emptied and rebuilt from the records of the same schema."""
    rollups, cell_keys, _ = _modules(with_added=True)
    statements = []
    for base, (tables, keys, measures) in rollups.BASES.items():
        every = [*measures, *cell_keys._added(base)]
        for name, names in tables.items():
            statements.append(f"DELETE FROM {schema}.{name}")
            statements.append(
                cell_keys._rebuild(f"{schema}.{base}", f"{schema}.{name}", names, keys, every)
            )
    return statements


def _columns(schema: str, adding: bool) -> list[str]:
    rollups = migration("0006_rollups.py")
    statements = []
    for base, (tables, _, _) in rollups.BASES.items():
        for name in tables:
            if adding:
                changes = ", ".join(
                    f"ADD COLUMN {column} {kind} NOT NULL DEFAULT 0"
                    for column, _, kind in _added(base)
                )
            else:
                changes = ", ".join(f"DROP COLUMN {column}" for column, _, _ in _added(base))
            statements.append(f"ALTER TABLE {schema}.{name} {changes}")
            if adding and schema == "public":
                defaults = ", ".join(
                    f"ALTER COLUMN {column} DROP DEFAULT" for column, _, _ in _added(base)
                )
                statements.append(f"ALTER TABLE {schema}.{name} {defaults}")
    return statements


def _in_release(schema: str, statements: list[str]) -> str:
    """`statements` run only if `schema` holds a release (its rollups were copied)."""
    body = "\n        ".join(
        "EXECUTE '{}';".format(statement.replace("'", "''")) for statement in statements
    )
    return (
        f"DO $$ BEGIN\n    IF to_regclass('{schema}.msme_rollup_regency') IS NOT NULL THEN"
        f"\n        {body}\n    END IF;\nEND $$"
    )


def upgrade() -> None:
    for statement in [*_columns("public", adding=True), *_rebuilds("public")]:
        op.execute(statement)
    _trigger_functions(with_added=True)
    for schema in RELEASES:
        op.execute(_in_release(schema, [*_columns(schema, adding=True), *_rebuilds(schema)]))
    rollups = migration("0006_rollups.py")
    op.execute(
        "ANALYZE " + ", ".join(name for tables, _, _ in rollups.BASES.values() for name in tables)
    )


def downgrade() -> None:
    _trigger_functions(with_added=False)
    for statement in _columns("public", adding=False):
        op.execute(statement)
    for schema in RELEASES:
        op.execute(_in_release(schema, _columns(schema, adding=False)))
