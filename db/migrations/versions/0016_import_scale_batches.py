"""A record an import creates gets its first scale history entry per batch, not a row of its own.

An imported record's first scale entry says only "this scale, from the import's day, under these
rules, with these figures": the figures are the record's own until they first change. Writing
them again as one row per record (and its foreign-key check) was a fifth of the import's time in
PostgreSQL. Instead, the batches of migration 0015 also note the day and the rule version, and
the view `scale_history` is the history as it was: the rows of `msme_scale_history`, and for
each record of such a batch its first entry, read from the record as it is now.

That holds because the entry is written out as a row of its own before the record's scale or
figures first change: a trigger on `msmes` does so with the values the record had (the old
rows), so a record whose entry is still read from it has the values it was created with. Every
later entry is a row, as before, after that first one; so what counts graduations (a row and
the one before it) needs only the rows, and the graduation figures read the table alone.

A same-day change still replaces the day's entry (the writers' ON CONFLICT on the record and day):
the view leaves out a batch's entry for a record that has a row of that day.

Batches of earlier imports (no day noted) wrote their rows, and are left out of the view.

The rollups' triggers (0006, 0012) group a statement's rows once, by every key of every rollup,
and each rollup adds up those few groups: they grouped all of the rows once per rollup, four
times ten sums a row (a sixth of an import's time in PostgreSQL).

Revision ID: 0016
Revises: 0015
"""

from alembic import op

from db.migrations.earlier import migration

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

# The first entry of each record of a batch that noted its day, unless that day has a row.
_BATCHED = """
SELECT m.id AS msme_id, m.scale, b.effective_from, m.annual_turnover AS annual_sales,
       m.capital, b.rule_version, b.at AS recorded_at
  FROM msmes m
  JOIN LATERAL (SELECT * FROM msme_import_batches b WHERE b.first_id <= m.id
                 ORDER BY b.first_id DESC LIMIT 1) b
       ON m.id <= b.last_id AND b.effective_from IS NOT NULL
 WHERE NOT EXISTS (SELECT FROM msme_scale_history h
                    WHERE h.msme_id = m.id AND h.effective_from = b.effective_from)
"""

VIEW = f"""
CREATE VIEW scale_history AS
SELECT msme_id, scale, effective_from, annual_sales, capital, rule_version, recorded_at
  FROM msme_scale_history
 UNION ALL{_BATCHED}"""

# Before a batched record's scale or figures first change, its first entry becomes a row with
# the values it had (ON CONFLICT: it is a row already). Runs as the writer, who may write the
# history and read the batches (db/roles.py).
TRIGGER_FUNCTION = """
CREATE FUNCTION msmes_scale_batches_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO msme_scale_history
           (msme_id, scale, effective_from, annual_sales, capital, rule_version, recorded_at)
    SELECT o.id, o.scale, b.effective_from, o.annual_turnover, o.capital, b.rule_version, b.at
      FROM old_rows o JOIN new_rows n ON n.id = o.id
      JOIN LATERAL (SELECT * FROM msme_import_batches b WHERE b.first_id <= o.id
                     ORDER BY b.first_id DESC LIMIT 1) b
           ON o.id <= b.last_id AND b.effective_from IS NOT NULL
     WHERE (o.scale, o.annual_turnover, o.capital) IS DISTINCT FROM
           (n.scale, n.annual_turnover, n.capital)
     ORDER BY o.id
    ON CONFLICT (msme_id, effective_from) DO NOTHING;
    RETURN NULL;
END $$
"""




def _rollup_functions() -> list[str]:
    """Each rollup trigger function, grouping the statement's rows once (`fine`), then each
    rollup from those groups; as 0006's, cells that did not change are skipped (no lock) and
    cells are upserted in key order, in one statement, then emptied cells deleted."""
    rollups_0006, cell_keys_0012 = migration("0006_rollups.py"), migration("0012_cell_keys.py")
    functions = []
    for base in ("msmes", "cooperatives"):
        rollups, keys, measures = rollups_0006.BASES[base]
        measures = [*measures, *cell_keys_0012._added(base)]
        sums = ["n", *(column for column, _, _ in measures)]
        for operation in ("INSERT", "UPDATE", "DELETE"):
            changes = cell_keys_0012._changes(keys, measures, operation)
            fine = (
                f"SELECT {', '.join(keys)}, sum(sign) AS n, "
                + ", ".join(f"coalesce(sum(sign * {c}), 0) AS {c}" for c in sums[1:])
                + f" FROM ({changes}) AS changes GROUP BY {', '.join(keys)}"
            )
            upserts = []
            for name, names in rollups.items():
                key_list = ", ".join(names)
                upserts.append(
                    f"INSERT INTO {name} AS r ({key_list}, {', '.join(sums)})"
                    f" SELECT {key_list}, {', '.join(f'sum({c}) AS {c}' for c in sums)}"
                    f" FROM fine GROUP BY {key_list}"
                    f" HAVING {' OR '.join(f'sum({c}) <> 0' for c in sums)}"
                    f" ORDER BY {key_list} ON CONFLICT ({key_list}) DO UPDATE"
                    f" SET {', '.join(f'{c} = r.{c} + excluded.{c}' for c in sums)}"
                )
            ctes = "".join(f",\n    u{i} AS ({u})" for i, u in enumerate(upserts[:-1]))
            deletes = "".join(f"\n    DELETE FROM {name} WHERE n = 0;" for name in rollups)
            functions.append(
                f"CREATE OR REPLACE FUNCTION {base}_rollups_{operation.lower()}() RETURNS trigger"
                f" LANGUAGE plpgsql AS $$\nBEGIN\n    WITH fine AS MATERIALIZED ({fine}){ctes}"
                f"\n    {upserts[-1]};{deletes}\n    RETURN NULL;\nEND $$;"
            )
    return functions


def _rollup_functions_0012() -> list[str]:
    rollups_0006, cell_keys_0012 = migration("0006_rollups.py"), migration("0012_cell_keys.py")
    return [
        function
        for base in ("msmes", "cooperatives")
        for function in cell_keys_0012._trigger_functions(
            rollups_0006,
            base,
            [*rollups_0006.BASES[base][2], *cell_keys_0012._added(base)],
        )
    ]


def upgrade() -> None:
    op.execute("ALTER TABLE msme_import_batches ADD COLUMN effective_from date")
    op.execute("ALTER TABLE msme_import_batches ADD COLUMN rule_version varchar(20)")
    op.execute(VIEW)
    op.execute(TRIGGER_FUNCTION)
    op.execute(
        "CREATE TRIGGER msmes_scale_batches_update AFTER UPDATE ON msmes"
        " REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
        " FOR EACH STATEMENT EXECUTE FUNCTION msmes_scale_batches_update()"
    )
    for function in _rollup_functions():
        op.execute(function)


def downgrade() -> None:
    for function in _rollup_functions_0012():
        op.execute(function)
    # The batches' entries become rows again, as earlier revisions wrote them.
    op.execute(
        "INSERT INTO msme_scale_history"
        " (msme_id, scale, effective_from, annual_sales, capital, rule_version, recorded_at)"
        f" SELECT * FROM ({_BATCHED}) AS batched ORDER BY msme_id"
    )
    op.execute("DROP TRIGGER msmes_scale_batches_update ON msmes")
    op.execute("DROP FUNCTION msmes_scale_batches_update()")
    op.execute("DROP VIEW scale_history")
    # 0015's view reads the batches through `SELECT *`, which PostgreSQL expands when a view is
    # made: made again after this revision (0037), it names these columns, so it is made again
    # without them.
    op.execute("DROP VIEW record_history")
    op.execute("ALTER TABLE msme_import_batches DROP COLUMN rule_version")
    op.execute("ALTER TABLE msme_import_batches DROP COLUMN effective_from")
    op.execute(migration("0015_import_batches.py").VIEW)
