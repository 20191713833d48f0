"""The change feed: every change to MSMEs, cooperatives, participation and guarantees, in commit
order, written by the database itself.

Statement-level triggers with transition tables note each changed record (a 100,000-row import
costs one INSERT … SELECT, not 100,000 trigger calls), with where the record was before and
after the change, so a reader can tell a move into its jurisdiction (a creation, to it) from one
out of it (a removal), without the entry carrying any of the record's data: readers join the
record as it is now, under their own access rules.

Commit order. The notes go first to `change_pending` (UNLOGGED: an in-flight transaction's
notes die with it anyway). At commit, a deferred constraint trigger (the last thing the
transaction does) moves them into `change_log`, numbering them from one sequence, under a
transaction-level advisory lock that is released only once the commit is visible. A transaction
numbered after another took the lock after the other's commit became visible, so every
snapshot that sees entry n+1 sees entry n: what a reader sees of `change_log` is always a
prefix of its ids (a rolled-back transaction numbers nothing, and a failed commit leaves gaps,
never holes that fill later). A cursor past entry n therefore never misses a change committed
late. The same holds on a streaming replica, which makes commits visible in WAL order. The lock
serialises only the commits of transactions that changed records (an import holds it while its
entries are numbered); record writes are few next to reads.

The commit trigger also sends NOTIFY `sinergi_changes`, delivered at commit, which wakes the
subscriptions of every process.

The trigger functions are SECURITY DEFINER with a fixed search_path: the feed's tables are
written by them alone, and the service holds only SELECT on `change_log` (db/roles.py), so
it cannot forge, alter, delete or renumber an entry.

Existing records enter the log as creations, so a client that starts from no cursor receives
the whole register, then every change after it.

A downgrade refuses while the log holds an entry: an upgrade would number the register again
from 1, and clients' cursors would silently skip or repeat changes.

Revision ID: 0014
Revises: 0013
"""

from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

FEED_TABLES = ("change_log", "change_pending", "change_pending_transactions")

DEFINER = "SECURITY DEFINER SET search_path = pg_catalog, public"

# Where each base table's record lies, as (province, regency, district) expressions over a row.
PLACE = {
    "msmes": ("{r}.province_code", "{r}.regency_code", "{r}.district_code"),
    "cooperatives": ("{r}.province_code", "{r}.regency_code", "{r}.district_code"),
    "guarantees": ("{r}.province_code", "{r}.regency_code", "NULL"),
}
KIND = {"msmes": "msme", "cooperatives": "cooperative", "guarantees": "guarantee"}
DEACTIVATED = {
    "msmes": "o.is_active AND NOT n.is_active",
    "cooperatives": "o.status = 'active' AND n.status <> 'active'",
    "guarantees": "false",
}
OWNER = {"msmes": "NULL", "cooperatives": "NULL", "guarantees": "{r}.guarantor_client_id"}

COLUMNS = (
    "record_kind, record_id, operation, deactivated, personal, old_province, old_regency, "
    "old_district, new_province, new_regency, new_district, owner_client_id"
)
NOTE_TRANSACTION = """
    GET DIAGNOSTICS logged = ROW_COUNT;
    IF logged > 0 THEN
        INSERT INTO change_pending_transactions (xid) VALUES (pg_current_xact_id())
        ON CONFLICT DO NOTHING;
    END IF;"""


def _place(table: str, alias: str) -> list[str]:
    return [part.format(r=alias) for part in PLACE[table]]


def _function(name: str, body: str) -> str:
    return f"""
CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
DECLARE
    logged bigint;
BEGIN{body}
    RETURN NULL;
END $$;
"""


def _record_changes(table: str, operation: str) -> str:
    """The INSERT … SELECT that logs a statement's changes to `table`'s own records."""
    kind = KIND[table]
    nulls = ["NULL", "NULL", "NULL"]
    if operation == "insert":
        old, new, source, deactivated, owner = nulls, _place(table, "n"), "new_rows n", "false", "n"
        where = ""
    elif operation == "delete":
        old, new, source, deactivated, owner = _place(table, "o"), nulls, "old_rows o", "false", "o"
        where = ""
    else:
        old, new = _place(table, "o"), _place(table, "n")
        source = "new_rows n JOIN old_rows o ON o.id = n.id"
        deactivated, owner = DEACTIVATED[table], "n"
        where = " WHERE n IS DISTINCT FROM o"
    key = "o" if operation == "delete" else "n"
    return f"""
    INSERT INTO change_pending ({COLUMNS})
    SELECT '{kind}', {key}.id::text, '{operation}', {deactivated}, false, {", ".join(old)},
           {", ".join(new)}, {OWNER[table].format(r=owner)}
      FROM {source}{where} ORDER BY {key}.id;{NOTE_TRANSACTION}"""


def _moved_participations(table: str) -> str:
    """A business that moves takes its programme participation with it."""
    subject = "msme_id" if table == "msmes" else "cooperative_id"
    return f"""
    INSERT INTO change_pending ({COLUMNS})
    SELECT 'participation', p.id::text, 'update', false, false, {", ".join(_place(table, "o"))},
           {", ".join(_place(table, "n"))}, NULL
      FROM new_rows n JOIN old_rows o ON o.id = n.id JOIN participations p ON p.{subject} = n.id
     WHERE (o.province_code, o.regency_code, o.district_code)
           IS DISTINCT FROM (n.province_code, n.regency_code, n.district_code)
     ORDER BY p.id;{NOTE_TRANSACTION}"""


def _participation_changes(operation: str) -> str:
    """Participation lies where its business does (as it is now: a participation row does not
    move on its own)."""
    rows = "old_rows" if operation == "delete" else "new_rows"
    place = [
        f"CASE WHEN r.msme_id IS NOT NULL THEN m.{column} ELSE c.{column} END"
        for column in ("province_code", "regency_code", "district_code")
    ]
    old = place if operation != "insert" else ["NULL"] * 3
    new = place if operation != "delete" else ["NULL"] * 3
    where = ""
    if operation == "update":
        where = " AND r IS DISTINCT FROM (SELECT o FROM old_rows o WHERE o.id = r.id)"
    return f"""
    INSERT INTO change_pending ({COLUMNS})
    SELECT 'participation', r.id::text, '{operation}', false, false, {", ".join(old)},
           {", ".join(new)}, NULL
      FROM {rows} r LEFT JOIN msmes m ON m.id = r.msme_id
           LEFT JOIN cooperatives c ON c.id = r.cooperative_id
     WHERE coalesce(m.id, c.id) IS NOT NULL{where}
     ORDER BY r.id;{NOTE_TRANSACTION}"""


def _owner_changes(operation: str) -> str:
    """An owner's personal data is part of its MSME's record, for clients that may read it."""
    rows = "old_rows" if operation == "delete" else "new_rows"
    place = _place("msmes", "m")
    where = ""
    if operation == "update":
        where = " WHERE r IS DISTINCT FROM (SELECT o FROM old_rows o WHERE o.msme_id = r.msme_id)"
    return f"""
    INSERT INTO change_pending ({COLUMNS})
    SELECT 'msme', r.msme_id::text, 'update', false, true, {", ".join(place)},
           {", ".join(place)}, NULL
      FROM {rows} r JOIN msmes m ON m.id = r.msme_id{where}
     ORDER BY r.msme_id;{NOTE_TRANSACTION}"""


TRANSITIONS = {
    "insert": "NEW TABLE AS new_rows",
    "update": "OLD TABLE AS old_rows NEW TABLE AS new_rows",
    "delete": "OLD TABLE AS old_rows",
}


def _bodies() -> dict[tuple[str, str], str]:
    bodies: dict[tuple[str, str], str] = {}
    for table in ("msmes", "cooperatives", "guarantees"):
        for operation in TRANSITIONS:
            body = _record_changes(table, operation)
            if operation == "update" and table != "guarantees":
                body += _moved_participations(table)
            bodies[(table, operation)] = body
    for operation in TRANSITIONS:
        bodies[("participations", operation)] = _participation_changes(operation)
        bodies[("msme_owners", operation)] = _owner_changes(operation)
    return bodies


COMMIT = f"""
CREATE FUNCTION change_pending_commit() RETURNS trigger LANGUAGE plpgsql {DEFINER} AS $$
BEGIN
    -- Held until this transaction's commit is visible: entries are numbered in that order.
    PERFORM pg_advisory_xact_lock(hashtext('sinergi.change_feed'));
    INSERT INTO change_log (id, {COLUMNS})
    SELECT nextval('change_log_id_seq'), {COLUMNS}
      FROM (SELECT * FROM change_pending WHERE xid = NEW.xid ORDER BY pending_id) AS pending;
    DELETE FROM change_pending WHERE xid = NEW.xid;
    DELETE FROM change_pending_transactions WHERE xid = NEW.xid;
    PERFORM pg_notify('sinergi_changes', '');
    RETURN NULL;
END $$;
"""

BACKFILL = [
    f"INSERT INTO change_log ({COLUMNS}) SELECT '{KIND[table]}', id::text, 'insert', false, "
    f"false, NULL, NULL, NULL, {', '.join(_place(table, table))}, "
    f"{OWNER[table].format(r=table)} FROM {table} ORDER BY id"
    for table in ("cooperatives", "msmes", "guarantees")
] + [
    f"INSERT INTO change_log ({COLUMNS}) SELECT 'participation', r.id::text, 'insert', false, "
    "false, NULL, NULL, NULL, coalesce(m.province_code, c.province_code), "
    "coalesce(m.regency_code, c.regency_code), "
    "CASE WHEN r.msme_id IS NOT NULL THEN m.district_code ELSE c.district_code END, NULL "
    "FROM participations r LEFT JOIN msmes m ON m.id = r.msme_id "
    "LEFT JOIN cooperatives c ON c.id = r.cooperative_id ORDER BY r.id",
]


ENTRY_COLUMNS = (
    " record_kind varchar(15) NOT NULL,"
    " record_id text NOT NULL,"
    " operation varchar(6) NOT NULL,"
    " deactivated boolean NOT NULL, personal boolean NOT NULL,"
    " old_province varchar(13), old_regency varchar(13), old_district varchar(13),"
    " new_province varchar(13), new_regency varchar(13), new_district varchar(13),"
    " owner_client_id text"
)


def upgrade() -> None:
    op.execute(
        "CREATE TABLE change_log ("
        " id bigint GENERATED BY DEFAULT AS IDENTITY CONSTRAINT pk_change_log PRIMARY KEY,"
        f"{ENTRY_COLUMNS},"
        " CONSTRAINT ck_change_log_record_kind"
        "  CHECK (record_kind IN ('msme', 'cooperative', 'participation', 'guarantee')),"
        " CONSTRAINT ck_change_log_operation CHECK (operation IN ('insert', 'update', 'delete')))"
    )
    op.execute(
        "CREATE UNLOGGED TABLE change_pending ("
        " pending_id bigint GENERATED ALWAYS AS IDENTITY,"
        " xid xid8 NOT NULL DEFAULT pg_current_xact_id(),"
        f"{ENTRY_COLUMNS})"
    )
    op.execute("CREATE INDEX ix_change_pending_xid ON change_pending (xid, pending_id)")
    op.execute(
        "CREATE UNLOGGED TABLE change_pending_transactions ("
        " xid xid8 NOT NULL CONSTRAINT pk_change_pending_transactions PRIMARY KEY)"
    )
    for statement in BACKFILL:
        op.execute(statement)
    op.execute(COMMIT)
    op.execute(
        "CREATE CONSTRAINT TRIGGER change_pending_commit AFTER INSERT"
        " ON change_pending_transactions DEFERRABLE INITIALLY DEFERRED"
        " FOR EACH ROW EXECUTE FUNCTION change_pending_commit()"
    )
    for (table, operation), body in _bodies().items():
        name = f"{table}_change_log_{operation}"
        op.execute(_function(name, body))
        op.execute(
            f"CREATE TRIGGER {name} AFTER {operation.upper()} ON {table} "
            f"REFERENCING {TRANSITIONS[operation]} FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
    op.execute(f"REVOKE ALL ON {', '.join(FEED_TABLES)} FROM PUBLIC")
    op.execute("REVOKE ALL ON SEQUENCE change_log_id_seq FROM PUBLIC")


def downgrade() -> None:
    # An upgrade would number the register again from 1: clients' cursors would name other
    # entries than they did, and a copy would silently skip or repeat changes. A database whose
    # feed holds an entry stays at this revision (change_pending holds notes only while their
    # transaction runs).
    op.execute(
        "DO $$ DECLARE logged bigint; BEGIN"
        " SELECT count(*) INTO logged FROM change_log;"
        " IF logged > 0 THEN RAISE EXCEPTION 'the change feed holds % entries; a downgrade drops"
        " them and an upgrade numbers the register again from 1, so clients'' cursors would"
        " silently skip or repeat changes: cannot downgrade', logged; END IF; END $$"
    )
    for table, operation in _bodies():
        name = f"{table}_change_log_{operation}"
        op.execute(f"DROP TRIGGER {name} ON {table}")
        op.execute(f"DROP FUNCTION {name}()")
    op.execute("DROP TABLE change_pending_transactions")
    op.execute("DROP FUNCTION change_pending_commit()")
    op.execute("DROP TABLE change_pending")
    op.execute("DROP TABLE change_log")
