"""Cell keys: a permanent secret key per record, and what the rollups need to perturb figures.

Every MSME, cooperative and guarantee gets a random record key (32 bits from
gen_random_uuid(), drawn per row, for existing rows too). Each rollup cell keeps the sum of its
records' keys and, per summed measure, the sum of squares; the triggers of 0006 are replaced by
the same triggers over these measures too, and the rollups are rebuilt from the records.

A downgrade refuses while any of those tables holds a record: its key could not be drawn again
as it was, and the figures published from the rollups would change.

Revision ID: 0012
Revises: 0011
"""

from types import ModuleType

from alembic import op

from db.migrations.earlier import migration

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

RECORD_KEY = "('x' || left(gen_random_uuid()::text, 8))::bit(32)::bigint"
KEYED = ("msmes", "cooperatives", "guarantees")

Measures = list[tuple[str, str, str]]


def _squares(source: str) -> str:
    return f"({source})::numeric * ({source})"


def _added(base: str) -> Measures:
    """Columns this revision adds to the rollups of `base`: the key sum and sums of squares."""
    sources = {
        "msmes": {
            "turnover": "annual_turnover",
            "capital": "capital",
            "employees": "employees",
        },
        "cooperatives": {
            "business_volume": "business_volume",
            "assets": "assets",
            "members": "members_male + members_female",
        },
    }[base]
    squares = [
        (f"{measure}_squares", _squares(source), "numeric") for measure, source in sources.items()
    ]
    return [("cell_key_sum", "cell_key", "bigint"), *squares]


def _changes(keys: dict[str, str], measures: Measures, operation: str) -> str:
    """The rows a statement added (+1) and removed (-1), from its transition tables."""
    columns = [f"{expression} AS {key}" for key, expression in keys.items()]
    columns += [f"{expression} AS {column}" for column, expression, _ in measures]
    selected = ", ".join(columns)
    parts = []
    if operation in ("INSERT", "UPDATE"):
        parts.append(f"SELECT {selected}, 1 AS sign FROM new_rows")
    if operation in ("UPDATE", "DELETE"):
        parts.append(f"SELECT {selected}, -1 AS sign FROM old_rows")
    return " UNION ALL ".join(parts)


def _trigger_functions(old: ModuleType, base: str, measures: Measures) -> list[str]:
    """0006's trigger functions for `base`, over `measures`, as CREATE OR REPLACE."""
    rollups, keys, _ = old.BASES[base]
    functions = []
    for operation in ("INSERT", "UPDATE", "DELETE"):
        changes = _changes(keys, measures, operation)
        body = "".join(old._apply(name, names, measures, changes) for name, names in rollups.items())
        functions.append(
            f"CREATE OR REPLACE FUNCTION {base}_rollups_{operation.lower()}() RETURNS trigger "
            f"LANGUAGE plpgsql AS $$\nBEGIN{body}\n    RETURN NULL;\nEND $$;"
        )
    return functions


def _rebuild(base: str, name: str, names: list[str], keys: dict[str, str], measures: Measures) -> str:
    selected = [keys[key] for key in names]
    sums = ["count(*)"] + [f"coalesce(sum({expression}), 0)" for _, expression, _ in measures]
    return (
        f"INSERT INTO {name} ({', '.join(names)}, n, {', '.join(m[0] for m in measures)}) "
        f"SELECT {', '.join(selected)}, {', '.join(sums)} FROM {base} "
        f"GROUP BY {', '.join(str(i + 1) for i in range(len(names)))}"
    )


def upgrade() -> None:
    old = migration("0006_rollups.py")
    for table in KEYED:
        op.execute(f"ALTER TABLE {table} ADD COLUMN cell_key bigint NOT NULL DEFAULT {RECORD_KEY}")
    for base in ("msmes", "cooperatives"):
        rollups, keys, measures = old.BASES[base]
        added = _added(base)
        for name in rollups:
            columns = ", ".join(
                f"ADD COLUMN {column} {kind} NOT NULL DEFAULT 0" for column, _, kind in added
            )
            op.execute(f"ALTER TABLE {name} {columns}")
            defaults = ", ".join(f"ALTER COLUMN {column} DROP DEFAULT" for column, _, _ in added)
            op.execute(f"ALTER TABLE {name} {defaults}")
        for function in _trigger_functions(old, base, [*measures, *added]):
            op.execute(function)
        for name, names in rollups.items():
            op.execute(f"DELETE FROM {name}")
            op.execute(_rebuild(base, name, names, keys, [*measures, *added]))
    op.execute(
        "ANALYZE " + ", ".join(name for rollups, _, _ in old.BASES.values() for name in rollups)
    )


def downgrade() -> None:
    # A record's key is drawn once and never again: dropped, an upgrade would draw new ones, and
    # every figure published from the perturbed rollups would change (the same cell would no
    # longer give the same value). A database that holds a keyed record stays at this revision.
    op.execute(
        "DO $$ DECLARE keyed bigint; BEGIN"
        " SELECT (SELECT count(*) FROM msmes) + (SELECT count(*) FROM cooperatives)"
        "  + (SELECT count(*) FROM guarantees) INTO keyed;"
        " IF keyed > 0 THEN RAISE EXCEPTION '% record(s) in msmes, cooperatives and guarantees"
        " hold cell keys; a downgrade drops them and an upgrade draws new ones, so every"
        " published perturbed figure would change: cannot downgrade', keyed; END IF; END $$"
    )
    old = migration("0006_rollups.py")
    for base in ("msmes", "cooperatives"):
        rollups, _, measures = old.BASES[base]
        for function in _trigger_functions(old, base, measures):
            op.execute(function)
        for name in rollups:
            columns = ", ".join(f"DROP COLUMN {column}" for column, _, _ in _added(base))
            op.execute(f"ALTER TABLE {name} {columns}")
    for table in KEYED:
        op.execute(f"ALTER TABLE {table} DROP COLUMN cell_key")
