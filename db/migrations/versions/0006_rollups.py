"""Rollups of MSMEs and cooperatives, kept exact by statement-level triggers, backfilled.

National figures group a few thousand rollup cells instead of scanning millions of records. The
triggers use transition tables, so a COPY or a 100,000-row upsert costs one grouped delta per
rollup rather than one trigger call per row; cells are upserted in key order so concurrent
writers lock them in the same order, and cells that fall to zero are deleted.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Key expressions over a base-table row, by rollup column.
MSME_KEYS = {
    "province_code": "province_code",
    "regency_code": "regency_code",
    "scale": "scale",
    "kbli_section": "kbli_section",
    "is_active": "is_active",
    "established_year": "extract(year FROM established_on)::int",
}
COOPERATIVE_KEYS = {
    "province_code": "province_code",
    "regency_code": "regency_code",
    "type": "type",
    "status": "status",
    "book_year": "book_year",
}
# Measure columns: (rollup column, expression over a row, SQL type). `n` counts rows.
MSME_MEASURES = [
    ("turnover_n", "(annual_turnover IS NOT NULL)::int", "bigint"),
    ("turnover_sum", "annual_turnover::numeric", "numeric"),
    ("capital_n", "(capital IS NOT NULL)::int", "bigint"),
    ("capital_sum", "capital::numeric", "numeric"),
    ("employees_n", "(employees IS NOT NULL)::int", "bigint"),
    ("employees_sum", "employees::bigint", "bigint"),
]
COOPERATIVE_MEASURES = [
    ("business_volume_sum", "business_volume::numeric", "numeric"),
    ("assets_sum", "assets::numeric", "numeric"),
    ("members_sum", "(members_male + members_female)::bigint", "bigint"),
]
KEY_TYPES = {
    "province_code": "varchar(13) NOT NULL",
    "regency_code": "varchar(13) NOT NULL",
    "scale": "varchar(6) NOT NULL",
    "kbli_section": "varchar(1) NOT NULL",
    "is_active": "boolean NOT NULL",
    "established_year": "integer",
    "type": "varchar(15) NOT NULL",
    "status": "varchar(10) NOT NULL",
    "book_year": "smallint",
}
MSME_ROLLUPS = {
    "msme_rollup_regency": ["province_code", "regency_code", "scale", "is_active"],
    "msme_rollup_province_kbli": ["province_code", "scale", "kbli_section", "is_active"],
    "msme_rollup_province_year": ["province_code", "scale", "is_active", "established_year"],
    "msme_rollup_regency_kbli": [
        "province_code",
        "regency_code",
        "scale",
        "kbli_section",
        "is_active",
    ],
}
COOPERATIVE_ROLLUPS = {
    "cooperative_rollup_province": ["province_code", "type", "status", "book_year"],
    "cooperative_rollup_regency": ["province_code", "regency_code", "type", "status", "book_year"],
}
BASES = {
    "msmes": (MSME_ROLLUPS, MSME_KEYS, MSME_MEASURES),
    "cooperatives": (COOPERATIVE_ROLLUPS, COOPERATIVE_KEYS, COOPERATIVE_MEASURES),
}


def _create_table(name: str, keys: list[str], measures: list[tuple[str, str, str]]) -> str:
    columns = [f"{key} {KEY_TYPES[key]}" for key in keys]
    columns.append("n bigint NOT NULL")
    columns += [f"{column} {kind} NOT NULL" for column, _, kind in measures]
    columns.append(f"CONSTRAINT uq_{name} UNIQUE NULLS NOT DISTINCT ({', '.join(keys)})")
    return f"CREATE TABLE {name} ({', '.join(columns)})"


def _changes(base: str, operation: str) -> str:
    """The rows a statement added (+1) and removed (-1), from its transition tables."""
    _, key_expressions, measures = BASES[base]
    columns = [f"{expression} AS {key}" for key, expression in key_expressions.items()]
    columns += [f"{expression} AS {column}" for column, expression, _ in measures]
    selected = ", ".join(columns)
    parts = []
    if operation in ("INSERT", "UPDATE"):
        parts.append(f"SELECT {selected}, 1 AS sign FROM new_rows")
    if operation in ("UPDATE", "DELETE"):
        parts.append(f"SELECT {selected}, -1 AS sign FROM old_rows")
    return " UNION ALL ".join(parts)


def _apply(name: str, keys: list[str], measures: list[tuple[str, str, str]], changes: str) -> str:
    """Add the net change per cell; skip cells a statement did not change (no lock taken)."""
    key_list = ", ".join(keys)
    deltas = ["sum(sign) AS n"] + [
        f"coalesce(sum(sign * {column}), 0) AS {column}" for column, _, _ in measures
    ]
    changed = " OR ".join(
        ["sum(sign) <> 0"]
        + [f"coalesce(sum(sign * {column}), 0) <> 0" for column, _, _ in measures]
    )
    updates = ", ".join(
        f"{column} = r.{column} + excluded.{column}" for column in ["n", *(m[0] for m in measures)]
    )
    return f"""
    INSERT INTO {name} AS r ({key_list}, n, {", ".join(m[0] for m in measures)})
    SELECT {key_list}, {", ".join(deltas)}
      FROM ({changes}) AS changes
     GROUP BY {key_list}
    HAVING {changed}
     ORDER BY {key_list}
    ON CONFLICT ({key_list}) DO UPDATE SET {updates};
    DELETE FROM {name} WHERE n = 0;"""


def _trigger_function(base: str, operation: str) -> str:
    rollups, _, measures = BASES[base]
    changes = _changes(base, operation)
    body = "".join(_apply(name, keys, measures, changes) for name, keys in rollups.items())
    return f"""
CREATE FUNCTION {base}_rollups_{operation.lower()}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN{body}
    RETURN NULL;
END $$;
"""


def _backfill(base: str, name: str, keys: list[str]) -> str:
    _, key_expressions, measures = BASES[base]
    selected = [key_expressions[key] for key in keys]
    sums = ["count(*)"] + [f"coalesce(sum({expression}), 0)" for _, expression, _ in measures]
    return (
        f"INSERT INTO {name} ({', '.join(keys)}, n, {', '.join(m[0] for m in measures)}) "
        f"SELECT {', '.join(selected)}, {', '.join(sums)} FROM {base} "
        f"GROUP BY {', '.join(str(i + 1) for i in range(len(keys)))}"
    )


def upgrade() -> None:
    for base, (rollups, _, measures) in BASES.items():
        for name, keys in rollups.items():
            op.execute(_create_table(name, keys, measures))
            op.execute(f"CREATE INDEX ix_{name}_empty ON {name} (n) WHERE n = 0")
            op.execute(_backfill(base, name, keys))
        for operation, transitions in (
            ("INSERT", "NEW TABLE AS new_rows"),
            ("UPDATE", "OLD TABLE AS old_rows NEW TABLE AS new_rows"),
            ("DELETE", "OLD TABLE AS old_rows"),
        ):
            op.execute(_trigger_function(base, operation))
            op.execute(
                f"CREATE TRIGGER {base}_rollups_{operation.lower()} AFTER {operation} ON {base} "
                f"REFERENCING {transitions} FOR EACH STATEMENT "
                f"EXECUTE FUNCTION {base}_rollups_{operation.lower()}()"
            )
        op.execute(
            f"CREATE FUNCTION {base}_rollups_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN TRUNCATE {', '.join(rollups)}; RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {base}_rollups_truncate AFTER TRUNCATE ON {base} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {base}_rollups_truncate()"
        )
    op.execute("ANALYZE " + ", ".join(name for rollups, _, _ in BASES.values() for name in rollups))


def downgrade() -> None:
    for base, (rollups, _, _) in BASES.items():
        for operation in ("insert", "update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER {base}_rollups_{operation} ON {base}")
            op.execute(f"DROP FUNCTION {base}_rollups_{operation}()")
        for name in rollups:
            op.execute(f"DROP TABLE {name}")
